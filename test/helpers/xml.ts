/**
 * XML as a real parser reads it: Python's xml.etree (expat), in a child
 * process, so a test of a generated document (an SVG chart, a report)
 * fails on anything that is not well-formed XML, and gets the element tree
 * to check otherwise.
 */
import { run } from './proc.js';

export interface XmlElement {
  /** The local name, without its namespace. */
  tag: string;
  attrs: Record<string, string>;
  /** The element's own text and its children's, as a reader sees it. */
  text: string;
  children: XmlElement[];
}

const PARSE = `
import json, sys, xml.etree.ElementTree as ET
def tree(e):
    return {'tag': e.tag.split('}')[-1], 'attrs': dict(e.attrib), 'text': ''.join(e.itertext()), 'children': [tree(c) for c in e]}
try:
    root = ET.fromstring(sys.stdin.buffer.read())
except ET.ParseError as err:
    print('not well-formed XML: %s' % err, file=sys.stderr)
    sys.exit(1)
json.dump(tree(root), sys.stdout)
`;

/** Parses `text`; rejects with the parser's message when it is not well-formed. */
export async function parseXml(text: string): Promise<XmlElement> {
  const r = await run('python3', ['-c', PARSE], { input: text });
  if (r.code !== 0) throw new Error(r.stderr.trim() || `python3 exited ${r.code}`);
  return JSON.parse(r.stdout) as XmlElement;
}

/** Every element under `e` (itself included), depth first. */
export function descendants(e: XmlElement): XmlElement[] {
  return [e, ...e.children.flatMap(descendants)];
}
