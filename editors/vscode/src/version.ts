// Which sidecar the extension can work with (no `vscode` dependency; test/version.test.ts).

/** The oldest `dist-space` whose protocol this extension speaks: the revision protocol,
 *  presence, and `--version` / `dist-space/info` reporting the version. */
export const MIN_SIDECAR = '0.1.0';

/** `dist-space 0.1.0` (the `--version` output) or `0.1.0` -> [0, 1, 0]; null if unparsable. */
export function parseVersion(s: string): number[] | null {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(s);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export function atLeast(v: number[], min: number[]): boolean {
  for (let i = 0; i < 3; i++) {
    if (v[i] !== min[i]) return v[i] > min[i];
  }
  return true;
}

export type BinaryCheck =
  | { ok: true; version: string }
  | { ok: false; problem: 'missing' | 'too-old' | 'broken'; message: string };

/** Judge the result of running `<bin> --version`. `spawnError` is the spawn error code (ENOENT...). */
export function judgeBinary(bin: string, spawnError: string | undefined, exitCode: number | null, stdout: string, stderr: string): BinaryCheck {
  const fix = 'Install it with `cargo install --path sidecar` from the dist-space repository, or set `distSpace.binaryPath` to its full path.';
  if (spawnError === 'ENOENT' || spawnError === 'EACCES') {
    return { ok: false, problem: 'missing', message: `dist-space: the binary \`${bin}\` was not found (${spawnError}). ${fix}` };
  }
  if (spawnError) {
    return { ok: false, problem: 'broken', message: `dist-space: \`${bin} --version\` failed (${spawnError}). ${fix}` };
  }
  const v = exitCode === 0 ? parseVersion(stdout) : null;
  if (!v) {
    // Binaries before 0.1.0 have no --version (clap: "unexpected argument").
    const why = (stderr || stdout).trim().split('\n')[0] ?? '';
    return {
      ok: false,
      problem: 'too-old',
      message: `dist-space: \`${bin}\` does not report a version (${why || `exit ${exitCode}`}); this extension needs dist-space ${MIN_SIDECAR} or newer. ${fix}`,
    };
  }
  const min = parseVersion(MIN_SIDECAR)!;
  if (!atLeast(v, min)) {
    return {
      ok: false,
      problem: 'too-old',
      message: `dist-space: \`${bin}\` is version ${v.join('.')}; this extension needs ${MIN_SIDECAR} or newer. ${fix}`,
    };
  }
  return { ok: true, version: v.join('.') };
}
