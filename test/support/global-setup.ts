// Vitest global setup: services shared by every test file are started once here.
// (Helpers add to this file; keep each service's start/stop in its own module under test/support/.)
export default async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
