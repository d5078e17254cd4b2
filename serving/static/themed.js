// Pages without a script of their own (the 404 page): the theme the player chose on the play page.
import { initTheme } from "./js/theme.js";

initTheme(null);
