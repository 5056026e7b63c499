import { defineConfig } from "vite";

// Relative asset paths: dist/ can be served from any folder or port.
// `npm run dev` serves on http://localhost:5173, an origin that tokengate's
// dev mode (`tokengate serve` with no config) allows.
export default defineConfig({
  base: "./",
  server: { port: 5173, strictPort: true },
  preview: { port: 5173, strictPort: true },
});
