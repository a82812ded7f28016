/** The presets a scenario's `preset:` and `cdevemu run --preset` accept: a prepared namespace for a known consumer (src/tcmu/preset.ts). */
export const PRESETS = ['tcmu'] as const;
