import { defineConfig } from "vitest/config";

// The UI is served by `pingmesh server` at / with the API on the same origin. During `npm run dev`
// API calls are proxied to PINGMESH_URL (default: the mock server, tests/mock-server.mjs).
const api = process.env.PINGMESH_URL ?? "http://127.0.0.1:9080";

export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 300,
  },
  server: {
    host: "127.0.0.1",
    proxy: { "/api": api },
  },
  test: {
    include: ["tests/unit/**/*.test.ts"],
    environment: "node",
  },
});
