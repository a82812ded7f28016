/**
 * Documents a test generated (an SVG chart, an HTML report), read by real
 * parsers in a child process: XML by Python's xml.etree (expat), so a
 * document that is not well-formed fails the test; HTML by Python's
 * html.parser, the way a test reads a page's DOM as a browser serialized
 * it (chromium --dump-dom). Either gives the element tree to check.
 */
import { run } from './proc.js';

export interface Element {
  /** The local name, without its namespace. */
  tag: string;
  attrs: Record<string, string>;
  /** The element's own text and its children's, as a reader sees it. */
  text: string;
  children: Element[];
}

const PARSE_XML = `
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

// A serialized DOM closes every element but the void ones, so a stack builds its tree.
const PARSE_HTML = `
import json, sys
from html.parser import HTMLParser
VOID = {'area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr'}
class Tree(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = {'tag': '#document', 'attrs': {}, 'children': [], 'parts': []}
        self.stack = [self.root]
    def handle_starttag(self, tag, attrs):
        e = {'tag': tag, 'attrs': {k: v or '' for k, v in attrs}, 'children': [], 'parts': []}
        self.stack[-1]['children'].append(e)
        self.stack[-1]['parts'].append(e)
        if tag not in VOID:
            self.stack.append(e)
    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i]['tag'] == tag:
                del self.stack[i:]
                return
    def handle_data(self, data):
        self.stack[-1]['parts'].append(data)
def done(e):
    e['text'] = ''.join(p if isinstance(p, str) else done(p)['text'] for p in e.pop('parts'))
    return e
p = Tree()
p.feed(sys.stdin.read())
p.close()
json.dump(done(p.root), sys.stdout)
`;

async function parse(script: string, text: string): Promise<Element> {
  // A bound, not an expectation: a page of thousands of rows takes python3
  // seconds on a loaded 2-CPU machine, past run()'s default 15 s.
  const r = await run('python3', ['-c', script], { input: text, timeoutMs: 80_000 });
  if (r.code !== 0) throw new Error(r.stderr.trim() || `python3 exited ${r.code ?? `on ${r.signal ?? 'a signal'}`}`);
  return JSON.parse(r.stdout) as Element;
}

/** Parses XML; rejects with the parser's message when it is not well-formed. */
export const parseXml = (text: string): Promise<Element> => parse(PARSE_XML, text);

/** Parses HTML into a tree under a `#document` element. */
export const parseHtml = (text: string): Promise<Element> => parse(PARSE_HTML, text);

/** Every element under `e` (itself included), depth first. */
export function descendants(e: Element): Element[] {
  return [e, ...e.children.flatMap(descendants)];
}

/** The elements under `e` with class `cls`. */
export const byClass = (e: Element, cls: string): Element[] =>
  descendants(e).filter((d) => (d.attrs.class ?? '').split(/\s+/).includes(cls));
