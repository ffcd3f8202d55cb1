/** Where the control plane serves the console (Vite's `base` is the same, with a trailing slash). */
export const BASENAME = "/console";
