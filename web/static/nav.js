// The header of the work-order pages: the logout button.

import { logout } from "./api.js";

document.getElementById("logout")?.addEventListener("click", logout);
