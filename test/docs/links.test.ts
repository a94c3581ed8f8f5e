/**
 * The documentation's links, checked as a reader clicking through GitHub would: every relative link
 * and image of every Markdown file names a file of the repository, every #anchor names a heading of
 * its page, and nothing points outside the repository (a clone holds nothing beside it).
 * markdown-it finds the links (so links in code blocks and inline code are not links) and
 * github-slugger gives each heading the anchor GitHub gives it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import GithubSlugger from 'github-slugger';
import MarkdownIt from 'markdown-it';

const ROOT = path.resolve(__dirname, '..', '..');
/** Folders that hold no documentation of the project: dependencies, tools, state and build output. */
const NOT_DOCUMENTATION = new Set(['node_modules', '.local', '.tools', 'dist', 'cdk.out', '.git', 'coverage']);
/** Targets a browser opens on the web, not in the repository. */
const ABSOLUTE_URL = /^(https?|mailto):/i;
const README_MAX_BYTES = 12_288;

const markdown = new MarkdownIt();

interface Link {
  /** The Markdown file the link is in, relative to the repository. */
  file: string;
  line: number;
  target: string;
}

function markdownFiles(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return NOT_DOCUMENTATION.has(entry.name) ? [] : markdownFiles(full);
    return entry.isFile() && entry.name.toLowerCase().endsWith('.md') ? [full] : [];
  });
}

/** Every link and image target of a Markdown text, with its line; none from code. */
function linksOf(text: string, file = 'the text'): Link[] {
  const links: Link[] = [];
  // Table cells carry no line of their own: they are on the line of the last block that has one (their row).
  let line = 1;
  for (const block of markdown.parse(text, {})) {
    if (block.map) line = block.map[0] + 1;
    if (block.type !== 'inline') continue;
    for (const token of block.children ?? []) {
      const target =
        token.type === 'link_open' ? token.attrGet('href') : token.type === 'image' ? token.attrGet('src') : null;
      if (target !== null) links.push({ file, line, target: String(target) });
    }
  }
  return links;
}

/** The text GitHub makes a heading's anchor from: what the heading shows, without its Markdown. */
function headingText(inline: MarkdownIt.Token): string {
  return (inline.children ?? [])
    .map((child) => (child.type === 'text' || child.type === 'code_inline' ? child.content : ''))
    .join('');
}

/** The anchors of a Markdown text's headings, as GitHub numbers repeated ones. */
function anchorsOf(text: string): Set<string> {
  const slugger = new GithubSlugger();
  const tokens = markdown.parse(text, {});
  const anchors = new Set<string>();
  tokens.forEach((token, i) => {
    const inline = tokens[i + 1];
    if (token.type === 'heading_open' && inline?.type === 'inline') anchors.add(slugger.slug(headingText(inline)));
  });
  return anchors;
}

const files = markdownFiles();
const relative = (file: string) => path.relative(ROOT, file);
const texts = new Map(files.map((file) => [file, readFileSync(file, 'utf8')]));
const links = files.flatMap((file) => linksOf(texts.get(file) ?? '', relative(file)));
const localLinks = links.filter((link) => !ABSOLUTE_URL.test(link.target));

/** Where a link leads: the file (the linking file itself for `#anchor`) and the anchor, decoded. */
function resolve(link: Link): { file: string; anchor: string | undefined } {
  const hash = link.target.indexOf('#');
  const pathPart = decodeURIComponent(hash < 0 ? link.target : link.target.slice(0, hash));
  const anchor = hash < 0 ? undefined : decodeURIComponent(link.target.slice(hash + 1));
  const from = path.join(ROOT, link.file);
  if (pathPart === '') return { file: from, anchor };
  // GitHub reads a leading / as the repository's root.
  const file = pathPart.startsWith('/') ? path.join(ROOT, pathPart) : path.resolve(path.dirname(from), pathPart);
  return { file, anchor };
}

const shown = (link: Link) => `${link.file}:${link.line}: ${link.target}`;
const insideRepository = (file: string) => file === ROOT || file.startsWith(ROOT + path.sep);

test('the documentation is found: README.md and the pages under docs/', () => {
  const found = files.map(relative);
  expect(found).toEqual(
    expect.arrayContaining(['README.md', path.join('docs', 'architecture.md'), path.join('docs', 'records-file.md')]),
  );
  expect(localLinks.length).toBeGreaterThan(50);
});

test('README.md is at most 12,288 bytes', () => {
  expect(statSync(path.join(ROOT, 'README.md')).size).toBeLessThanOrEqual(README_MAX_BYTES);
});

test('no link of any Markdown file points outside the repository', () => {
  const outside = localLinks.filter((link) => !insideRepository(resolve(link).file)).map(shown);
  expect(outside).toEqual([]);
});

test('every relative link of every Markdown file names a file of the repository', () => {
  const missing = localLinks.filter((link) => !existsSync(resolve(link).file)).map(shown);
  expect(missing).toEqual([]);
});

test('every #anchor of every Markdown file names a heading of the page it points to', () => {
  const anchorsByFile = new Map<string, Set<string>>();
  const anchorsIn = (file: string) => {
    let anchors = anchorsByFile.get(file);
    if (!anchors) {
      anchors = anchorsOf(texts.get(file) ?? readFileSync(file, 'utf8'));
      anchorsByFile.set(file, anchors);
    }
    return anchors;
  };
  const broken = localLinks
    .filter((link) => {
      const { file, anchor } = resolve(link);
      if (anchor === undefined || !existsSync(file)) return false;
      // Only Markdown pages have headings; an anchor into anything else cannot be checked, so it is refused.
      return !file.toLowerCase().endsWith('.md') || !anchorsIn(file).has(anchor);
    })
    .map(shown);
  expect(broken).toEqual([]);
});

describe('how links are read', () => {
  test('a link in a code block or in inline code is no link', () => {
    const text = [
      '[real](a.md)',
      '',
      '```',
      '[in a fence](b.md)',
      '```',
      '',
      '    [indented code](c.md)',
      '',
      '`[inline code](d.md)` ![picture](e.png)',
    ].join('\n');
    expect(linksOf(text).map((link) => link.target)).toEqual(['a.md', 'e.png']);
  });

  test('a reference-style link counts, with the line it is on', () => {
    const text = ['# Title', '', 'See [the design][design].', '', '[design]: docs/architecture.md#shape'].join('\n');
    expect(linksOf(text, 'README.md')).toEqual([{ file: 'README.md', line: 3, target: 'docs/architecture.md#shape' }]);
  });

  test('headings get the anchors GitHub gives them, repeated ones numbered', () => {
    const text = [
      '# `reindex dlq list | show | redrive`: review what failed',
      '## Limits',
      '## Limits',
      "### The worker's AWS permissions",
    ].join('\n');
    expect([...anchorsOf(text)]).toEqual([
      'reindex-dlq-list--show--redrive-review-what-failed',
      'limits',
      'limits-1',
      'the-workers-aws-permissions',
    ]);
  });
});
