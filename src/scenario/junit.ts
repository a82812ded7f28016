/**
 * JUnit XML for CI systems (`cdevemu run --junit FILE`): one testsuite per
 * scenario, one testcase per timeline step; a failed step carries its
 * message, steps after it are skipped.
 */
import type { ScenarioResult } from './runner.js';

const esc = (s: string): string =>
  s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
// XML 1.0 forbids most control characters, which program output may contain.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const clean = (s: string): string => s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export function junitXml(results: readonly ScenarioResult[]): string {
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = results.reduce((n, r) => n + r.steps.length, 0);
  const failures = results.reduce((n, r) => n + r.steps.filter((s) => s.status === 'failed').length, 0);
  out.push(`<testsuites name="cdevemu" tests="${total}" failures="${failures}">`);
  for (const r of results) {
    const failed = r.steps.filter((s) => s.status === 'failed').length;
    const skipped = r.steps.filter((s) => s.status === 'skipped').length;
    out.push(
      `  <testsuite name="${esc(r.name)}" file="${esc(r.file)}" tests="${r.steps.length}" failures="${failed}" skipped="${skipped}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    );
    r.steps.forEach((s, i) => {
      const name = `${String(i + 1).padStart(2, '0')} ${s.title}`;
      const head = `    <testcase classname="${esc(r.name)}" name="${esc(name)}" time="${(s.durationMs / 1000).toFixed(3)}"${s.line !== null ? ` line="${s.line}"` : ''}`;
      if (s.status === 'passed') out.push(`${head}/>`);
      else if (s.status === 'skipped') out.push(`${head}><skipped/></testcase>`);
      else {
        const msg = clean(s.message ?? '');
        out.push(`${head}><failure message="${esc(msg.split('\n')[0]!)}">${esc(msg)}</failure></testcase>`);
      }
    });
    out.push('  </testsuite>');
  }
  out.push('</testsuites>', '');
  return out.join('\n');
}
