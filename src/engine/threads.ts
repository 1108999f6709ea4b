/**
 * The default CPU thread count for a model instance, from measurements (docs/engine.md).
 *
 * llama.cpp's workers spin while they wait for each other, and the JS thread
 * (sampling, stop detection, streaming, HTTP) needs a core of its own: on a
 * 2-core box one thread decodes faster than two, and far faster when anything
 * else runs. So on small machines one core is left to the JS thread; from
 * 8 math cores up, one core out of 8 is a small price and still worth it.
 *
 * @param cpuMathCores node-llama-cpp's count of cores useful for math (physical, performance cores)
 */
export function defaultThreadCount(cpuMathCores: number): number {
  const cores = Math.max(1, Math.floor(cpuMathCores));
  return Math.max(1, cores - 1);
}
