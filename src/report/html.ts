/**
 * A run's report as one self-contained HTML page: totals, the review DLQ by reason, the IoU of
 * matched faces, faces migrated over time, and a gallery of the images behind the DLQ with the old
 * and the new boxes drawn on them. Charts are SVG drawn here; images come in as data: URIs. The
 * page loads nothing: its Content-Security-Policy forbids any request and any script but its own.
 * Every string from the run's data is escaped.
 */
import { createHash } from 'node:crypto';
import { count, percent, type PercentStyle } from '../domain/format';
import type { BoundingBox } from '../domain/matching';
import type { NewFaceSeen } from '../domain/outcomes';
import { ReasonCode } from '../domain/reasons';
import type { IouHistogram, ReportFigures, Throughput } from '../domain/report';

export interface GalleryEntry {
  reason: string;
  detail: string;
  bucket: string | undefined;
  key: string | undefined;
  externalImageId: string | undefined;
  faceId: string | undefined;
  userId: string | undefined;
  oldBox: BoundingBox | undefined;
  newFaces: NewFaceSeen[];
  /** The image among the page's images, or why it is not shown. */
  image: { index: number } | { missing: string };
}

export interface ReportPage {
  figures: ReportFigures;
  gallery: GalleryEntry[];
  /** data: URIs of the gallery's images, each image once however many entries show it. */
  images: string[];
  generatedAt: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string | number | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character);
}

/** Shares on the page: a dash for none, and all of it as 100%. */
const PAGE_PERCENT: PercentStyle = { none: '–', roundWhole: true };
/** Coordinates in SVG attributes: short, and never NaN. */
const n = (value: number) => (Number.isFinite(value) ? Number(value.toFixed(2)) : 0);

const REASON_COLORS: Record<string, string> = {
  [ReasonCode.IouBelowThreshold]: '#f59e0b',
  [ReasonCode.NoFaceDetected]: '#8b5cf6',
  [ReasonCode.ImageNotFound]: '#ef4444',
  [ReasonCode.AccessDenied]: '#dc2626',
  [ReasonCode.InvalidRecord]: '#64748b',
  [ReasonCode.DuplicateFaceId]: '#0ea5e9',
  [ReasonCode.InvalidImageFormat]: '#ec4899',
  [ReasonCode.ImageTooLarge]: '#f97316',
  [ReasonCode.UserFaceLimit]: '#14b8a6',
  [ReasonCode.UserAssociationRefused]: '#10b981',
};
const OTHER_COLORS = ['#6366f1', '#84cc16', '#06b6d4', '#a855f7', '#eab308'];

function reasonColor(reason: string): string {
  const known = REASON_COLORS[reason];
  if (known) return known;
  const hash = [...reason].reduce((sum, character) => sum + character.charCodeAt(0), 0);
  return OTHER_COLORS[hash % OTHER_COLORS.length] ?? '#6366f1';
}

function formatDuration(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  const minutes = seconds / 60;
  if (minutes < 90) return `${minutes.toFixed(1)} min`;
  const hours = minutes / 60;
  return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} days`;
}

/** A round axis maximum and its step: a whole 1, 2 or 5 times a power of ten, about four steps. */
function axis(max: number): { top: number; step: number } {
  if (max <= 0) return { top: 1, step: 1 };
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(
    1,
    [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough) ?? 10 * power,
  );
  return { top: Math.ceil(max / step) * step, step };
}

// ---------------------------------------------------------------- totals

function totalCard(key: string, label: string, value: number, note = '', tone = ''): string {
  return `<div class="card total${tone ? ` ${tone}` : ''}" data-total="${key}"><div class="label">${label}</div><div class="value">${count(value)}</div>${note ? `<div class="note">${note}</div>` : ''}</div>`;
}

function renderTotals({ summary }: ReportFigures): string {
  const matchedShare = summary.faces > 0 ? summary.matched / summary.faces : 0;
  const meter = `<div class="meter" title="${escapeHtml(percent(summary.matched, summary.faces, PAGE_PERCENT))} of old faces matched"><span style="width:${n(100 * matchedShare)}%"></span></div>`;
  const extras: [string, number][] = [
    ['invalid records', summary.invalidRecords],
    ['not processed', summary.notProcessed],
    ['result rows written', summary.resultsWritten],
    ['users created', summary.usersCreated],
    ['faces associated with users', summary.facesAssociated],
    ['orphans deleted', summary.orphansDeleted],
  ];
  return `<section class="totals">
  ${totalCard('images', 'Images', summary.images)}
  ${totalCard('faces', 'Old faces', summary.faces)}
  ${totalCard('matched', 'Matched', summary.matched, `${percent(summary.matched, summary.faces, PAGE_PERCENT)} of old faces${meter}`, 'good')}
  ${totalCard('unmatched', 'Unmatched old faces', summary.unmatchedOld, '', summary.unmatchedOld > 0 ? 'warn' : '')}
  ${totalCard('new-deleted', 'New faces deleted', summary.unmatchedNewDeleted, 'found only by the new model')}
  ${totalCard('new-kept', 'New faces kept', summary.unmatchedNewKept, 'found only by the new model')}
  ${totalCard('dlq', 'In review DLQ', summary.dlq, 'sent by the run', summary.dlq > 0 ? 'bad' : '')}
</section>
<p class="extras">${extras.map(([label, value]) => `<span data-extra="${escapeHtml(label)}"><b>${count(value)}</b> ${label}</span>`).join('')}</p>`;
}

// ---------------------------------------------------------------- charts

function renderReasons({ dlq, summary }: ReportFigures): string {
  const entries = Object.entries(dlq.byReason);
  const sentNote = dlq.total === summary.dlq ? '' : ` · the run sent ${count(summary.dlq)}`;
  const heading = `<h2>Why faces went to review</h2><p class="sub">${count(dlq.total)} message${dlq.total === 1 ? '' : 's'} of this run in the review DLQ now${sentNote}</p>`;
  if (entries.length === 0)
    return `<section class="card panel">${heading}<p class="empty">The review DLQ holds nothing of this run.</p></section>`;
  const width = 560;
  const labelWidth = 210;
  const row = 34;
  const barSpace = width - labelWidth - 56;
  const max = Math.max(...entries.map(([, value]) => value));
  const bars = entries
    .map(([reason, value], i) => {
      const barWidth = Math.max(3, (barSpace * value) / max);
      return `<g class="reason-bar" data-reason="${escapeHtml(reason)}" data-count="${value}" transform="translate(0 ${i * row})">
  <title>${escapeHtml(reason)}: ${count(value)}</title>
  <text class="bar-label" x="${labelWidth - 12}" y="21" text-anchor="end">${escapeHtml(reason)}</text>
  <rect x="${labelWidth}" y="5" width="${n(barWidth)}" height="24" rx="6" fill="${reasonColor(reason)}"/>
  <text class="bar-value" x="${n(labelWidth + barWidth + 8)}" y="22">${count(value)}</text>
</g>`;
    })
    .join('\n');
  return `<section class="card panel">${heading}
<svg class="chart reasons" viewBox="0 0 ${width} ${entries.length * row + 6}" role="img" aria-label="review DLQ messages by reason">${bars}</svg></section>`;
}

/** A chart's size and margins, and the plot area they leave. */
function chartFrame(
  width: number,
  height: number,
  margins: { left: number; right: number; top: number; bottom: number },
) {
  return {
    width,
    height,
    ...margins,
    plotWidth: width - margins.left - margins.right,
    plotHeight: height - margins.top - margins.bottom,
  };
}

function renderHistogram(iou: IouHistogram, rows: number): string {
  const { width, height, left, right, top, bottom, plotWidth, plotHeight } = chartFrame(560, 250, {
    left: 44,
    right: 12,
    top: 26,
    bottom: 34,
  });
  const binWidth = plotWidth / iou.counts.length;
  const { top: yTop, step } = axis(Math.max(...iou.counts));
  const y = (value: number) => top + plotHeight - (plotHeight * value) / yTop;
  const grid: string[] = [];
  for (let value = 0; value <= yTop; value += step) {
    grid.push(
      `<line class="grid" x1="${left}" x2="${width - right}" y1="${n(y(value))}" y2="${n(y(value))}"/><text class="tick" x="${left - 8}" y="${n(y(value) + 4)}" text-anchor="end">${count(value)}</text>`,
    );
  }
  const bars = iou.counts
    .map((value, i) => {
      const from = i * iou.binWidth;
      const below = iou.threshold !== undefined && from + iou.binWidth <= iou.threshold + 1e-9;
      const x = left + i * binWidth + 1.5;
      const label =
        value > 0
          ? `<text class="bin-count" x="${n(x + binWidth / 2 - 1.5)}" y="${n(y(value) - 5)}" text-anchor="middle">${count(value)}</text>`
          : '';
      return `<g class="iou-bin" data-from="${n(from)}" data-count="${value}"><title>IoU ${from.toFixed(2)}–${(from + iou.binWidth).toFixed(2)}: ${count(value)} faces</title><rect x="${n(x)}" y="${n(y(value))}" width="${n(binWidth - 3)}" height="${n(top + plotHeight - y(value))}" rx="3" class="${below ? 'below' : 'above'}"/>${label}</g>`;
    })
    .join('');
  const ticks = [0, 0.2, 0.4, 0.6, 0.8, 1]
    .map(
      (value) =>
        `<text class="tick" x="${n(left + value * plotWidth)}" y="${height - bottom + 18}" text-anchor="middle">${value.toFixed(1)}</text>`,
    )
    .join('');
  const threshold =
    iou.threshold === undefined
      ? ''
      : `<g class="threshold" data-threshold="${escapeHtml(iou.threshold)}"><line x1="${n(left + iou.threshold * plotWidth)}" x2="${n(left + iou.threshold * plotWidth)}" y1="${top - 14}" y2="${top + plotHeight}"/><text x="${n(left + iou.threshold * plotWidth + (iou.threshold > 0.8 ? -6 : 6))}" y="${top - 4}" text-anchor="${iou.threshold > 0.8 ? 'end' : 'start'}">threshold ${escapeHtml(iou.threshold)}</text></g>`;
  const note = iou.threshold === undefined ? ' · threshold unknown (pass --iou to mark it)' : '';
  return `<section class="card panel"><h2>How well old and new boxes agree</h2><p class="sub">IoU of the old and the new box of ${count(rows)} matched face${rows === 1 ? '' : 's'}, in bins of ${iou.binWidth}${note}</p>
<svg class="chart histogram" viewBox="0 0 ${width} ${height}" role="img" aria-label="histogram of IoU">${grid.join('')}${bars}<line class="axis" x1="${left}" x2="${width - right}" y1="${top + plotHeight}" y2="${top + plotHeight}"/>${ticks}${threshold}<text class="axis-title" x="${n(left + plotWidth / 2)}" y="${height - 2}" text-anchor="middle">IoU</text></svg></section>`;
}

function clock(iso: string): string {
  return iso.slice(11, 19);
}

function barLength(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3_600) return `${seconds / 60} min`;
  if (seconds < 86_400) return `${seconds / 3_600} h`;
  return `${seconds / 86_400} d`;
}

function renderThroughput(throughput: Throughput): string {
  const heading = '<h2>Faces migrated over time</h2>';
  if (throughput.start === undefined || throughput.counts.length === 0) {
    return `<section class="card panel wide">${heading}<p class="empty">No face of this run was migrated.</p></section>`;
  }
  const { width, height, left, right, top, bottom, plotWidth, plotHeight } = chartFrame(1120, 230, {
    left: 56,
    right: 16,
    top: 16,
    bottom: 40,
  });
  const perMinute = throughput.counts.map((value) => (value * 60) / throughput.barSeconds);
  const { top: yTop, step } = axis(Math.max(...perMinute));
  const y = (value: number) => top + plotHeight - (plotHeight * value) / yTop;
  const slot = plotWidth / throughput.counts.length;
  const barWidth = Math.min(slot * 0.78, 64);
  const startMs = Date.parse(throughput.start);
  const grid: string[] = [];
  for (let value = 0; value <= yTop; value += step) {
    grid.push(
      `<line class="grid" x1="${left}" x2="${width - right}" y1="${n(y(value))}" y2="${n(y(value))}"/><text class="tick" x="${left - 8}" y="${n(y(value) + 4)}" text-anchor="end">${count(value)}</text>`,
    );
  }
  const bars = perMinute
    .map((rate, i) => {
      const at = new Date(startMs + i * throughput.barSeconds * 1000).toISOString();
      const x = left + i * slot + (slot - barWidth) / 2;
      return `<g class="time-bar" data-at="${at}" data-count="${throughput.counts[i] ?? 0}"><title>${clock(at)} UTC: ${count(throughput.counts[i] ?? 0)} faces (${count(rate)}/min)</title><rect x="${n(x)}" y="${n(y(rate))}" width="${n(barWidth)}" height="${n(top + plotHeight - y(rate))}" rx="3"/></g>`;
    })
    .join('');
  const labelEvery = Math.max(1, Math.ceil(throughput.counts.length / 8));
  const labels = throughput.counts
    .map((_, i) => i)
    .filter((i) => i % labelEvery === 0)
    .map(
      (i) =>
        `<text class="tick" x="${n(left + i * slot + slot / 2)}" y="${height - bottom + 18}" text-anchor="middle">${clock(new Date(startMs + i * throughput.barSeconds * 1000).toISOString())}</text>`,
    )
    .join('');
  const day = throughput.start.slice(0, 10);
  return `<section class="card panel wide">${heading}<p class="sub">faces a minute · peak <b>${count(throughput.peakPerMinute)}</b> · mean <b>${count(throughput.meanPerMinute)}</b> · one bar per ${barLength(throughput.barSeconds)} · ${day} UTC</p>
<svg class="chart throughput" viewBox="0 0 ${width} ${height}" role="img" aria-label="faces migrated per minute over time">${grid.join('')}${bars}<line class="axis" x1="${left}" x2="${width - right}" y1="${top + plotHeight}" y2="${top + plotHeight}"/>${labels}</svg></section>`;
}

// ---------------------------------------------------------------- gallery

function boxRect(box: BoundingBox, kind: 'old' | 'new'): string {
  return `<rect class="box ${kind}" x="${n(box.Left * 100)}" y="${n(box.Top * 100)}" width="${n(box.Width * 100)}" height="${n(box.Height * 100)}" vector-effect="non-scaling-stroke"/>`;
}

/**
 * A box's label: a new face's above its top-left corner (inside when the box touches the image's
 * top), the old face's under its bottom-left corner, so the two never cover each other.
 */
function boxTag(box: BoundingBox, kind: 'old' | 'new', text: string): string {
  const left = Math.min(92, Math.max(0, box.Left * 100));
  const edge = kind === 'old' ? box.Top + box.Height : box.Top;
  const top = Math.min(100, Math.max(0, edge * 100));
  const placement = kind === 'old' ? (top > 93 ? ' above' : ' under') : top < 7 ? ' inside' : '';
  return `<span class="tag ${kind}${placement}" style="left:${n(left)}%;top:${n(top)}%">${escapeHtml(text)}</span>`;
}

function renderEntry(entry: GalleryEntry, threshold: number | undefined): string {
  const title = entry.externalImageId ?? entry.key?.split('/').pop() ?? 'record without an image';
  const where = entry.bucket && entry.key ? `s3://${entry.bucket}/${entry.key}` : 'no image named';
  let shot: string;
  if ('index' in entry.image) {
    const boxes = [
      ...entry.newFaces.map((face) => boxRect(face.BoundingBox, 'new')),
      ...(entry.oldBox ? [boxRect(entry.oldBox, 'old')] : []),
    ].join('');
    const tags = [
      ...entry.newFaces.map((face) => boxTag(face.BoundingBox, 'new', `IoU ${face.IoU.toFixed(2)}`)),
      ...(entry.oldBox ? [boxTag(entry.oldBox, 'old', 'old face')] : []),
    ].join('');
    shot = `<div class="shot"><img data-image="${entry.image.index}" alt="${escapeHtml(title)}"><svg viewBox="0 0 100 100" preserveAspectRatio="none" aria-hidden="true">${boxes}</svg>${tags}</div>`;
  } else {
    shot = `<div class="shot missing"><div><strong>Image not shown</strong><span class="why">${escapeHtml(entry.image.missing)}</span></div></div>`;
  }
  const best = entry.newFaces[0];
  const facts = [
    entry.faceId ? `<span>old face <code>${escapeHtml(entry.faceId)}</code></span>` : '',
    entry.userId ? `<span>user <code>${escapeHtml(entry.userId)}</code></span>` : '',
    'index' in entry.image && entry.oldBox
      ? `<span>${entry.newFaces.length} new face${entry.newFaces.length === 1 ? '' : 's'} found${best ? `, best IoU <b>${best.IoU.toFixed(2)}</b>${threshold === undefined ? '' : ` of ${escapeHtml(threshold)} needed`}` : ''}</span>`
      : '',
  ].join('');
  return `<article class="entry card" data-reason="${escapeHtml(entry.reason)}" data-new-faces="${entry.newFaces.length}" data-old-face="${entry.oldBox ? 1 : 0}">
${shot}
<div class="caption"><span class="chip" style="--chip:${reasonColor(entry.reason)}">${escapeHtml(entry.reason)}</span>
<h3>${escapeHtml(title)}</h3>
<p class="where">${escapeHtml(where)}</p>
<p class="detail">${escapeHtml(entry.detail)}</p>
<p class="facts">${facts}</p></div>
</article>`;
}

function renderGallery(page: ReportPage): string {
  const { gallery } = page.figures;
  const heading = '<h2>Review gallery</h2>';
  if (gallery.shown === 0 && gallery.leftOut === 0) {
    return `<section class="gallery-section">${heading}<p class="empty card">Nothing to review: the DLQ holds no message of this run.</p></section>`;
  }
  const leftOut =
    gallery.leftOut > 0
      ? ` · <b class="left-out" data-left-out="${gallery.leftOut}">${count(gallery.leftOut)} more</b> in the DLQ not shown (raise --gallery-limit to see them)`
      : '';
  return `<section class="gallery-section">${heading}
<p class="sub">${count(gallery.shown)} DLQ message${gallery.shown === 1 ? '' : 's'} shown${leftOut}
<span class="legend"><i class="swatch old"></i>old box, from the records file <i class="swatch new"></i>faces the new model found, with IoU against the old box</span></p>
<div class="gallery">${page.gallery.map((entry) => renderEntry(entry, page.figures.iou.threshold)).join('\n')}</div></section>`;
}

// ---------------------------------------------------------------- page

const STYLE = `
:root{--bg:#f3f5fa;--card:#fff;--ink:#1e293b;--muted:#64748b;--line:#e2e8f0;--accent:#4f46e5;--accent-soft:#c7d2fe;--good:#059669;--warn:#d97706;--bad:#dc2626;--old:#fbbf24;--new:#22d3ee}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:linear-gradient(120deg,#1e1b4b 0%,#4338ca 55%,#0e7490 100%);color:#fff;padding:30px 0 84px}
.wrap{max-width:1200px;margin:0 auto;padding:0 28px}
.eyebrow{text-transform:uppercase;letter-spacing:.14em;font-size:12px;opacity:.75}
h1{margin:6px 0 12px;font-size:30px;font-weight:700;word-break:break-all}
.meta{display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center;font-size:14px;opacity:.95}
.badge{display:inline-block;padding:2px 12px;border-radius:999px;font-weight:600;font-size:13px;background:#10b981}
.badge.cancelled{background:#f59e0b}
main{max-width:1200px;margin:-60px auto 48px;padding:0 28px}
.card{background:var(--card);border-radius:16px;box-shadow:0 1px 2px rgba(15,23,42,.06),0 8px 24px rgba(15,23,42,.07)}
.totals{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:14px}
.total{padding:16px 18px;border-top:4px solid var(--accent-soft)}
.total.good{border-top-color:var(--good)}.total.warn{border-top-color:var(--warn)}.total.bad{border-top-color:var(--bad)}
.total .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em;font-weight:600}
.total .value{font-size:32px;font-weight:750;line-height:1.2;margin-top:4px;font-variant-numeric:tabular-nums}
.total .note{color:var(--muted);font-size:12px;margin-top:2px}
.meter{height:6px;border-radius:3px;background:var(--line);margin-top:8px;overflow:hidden}
.meter span{display:block;height:100%;background:linear-gradient(90deg,#10b981,#059669)}
.extras{display:flex;flex-wrap:wrap;gap:8px;margin:14px 0 0;color:var(--muted);font-size:13px}
.extras span{background:#e9edf5;border-radius:999px;padding:3px 12px}.extras b{color:var(--ink)}
.panels{display:grid;grid-template-columns:1fr 1fr;gap:18px;margin-top:22px}
.panel{padding:20px 22px}.panel.wide{grid-column:1/-1}
h2{font-size:18px;margin:0}
.sub{color:var(--muted);font-size:13px;margin:2px 0 12px}
.empty{color:var(--muted);padding:18px 20px}
.chart{width:100%;height:auto;display:block;font-family:inherit}
.chart text{font-size:12px;fill:var(--muted)}
.chart .bar-label{fill:var(--ink);font-size:13px;font-weight:600}
.chart .bar-value{fill:var(--ink);font-size:13px;font-weight:700}
.chart .grid{stroke:var(--line);stroke-width:1}
.chart .axis{stroke:#94a3b8;stroke-width:1}
.chart .axis-title{font-weight:600}
.histogram rect.above{fill:var(--accent)}.histogram rect.below{fill:#cbd5e1}
.histogram .bin-count{fill:var(--ink);font-size:11px;font-weight:600}
.threshold line{stroke:var(--bad);stroke-width:2;stroke-dasharray:5 4}.threshold text{fill:var(--bad);font-weight:700}
.throughput rect{fill:#0891b2}
.gallery-section{margin-top:30px}
.legend{display:inline-flex;gap:8px;align-items:center;margin-left:14px}
.swatch{display:inline-block;width:18px;height:12px;border-radius:2px;vertical-align:middle}
.swatch.old{border:2px dashed var(--old)}.swatch.new{border:2px solid var(--new);margin-left:8px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:20px}
.entry{overflow:hidden;display:flex;flex-direction:column}
.shot{position:relative;background:#0f172a;overflow:hidden}
.shot img{display:block;width:100%;height:auto}
.shot svg{position:absolute;inset:0;width:100%;height:100%;overflow:visible}
.box{fill:none;stroke-width:2.5}
.box.old{stroke:var(--old);stroke-dasharray:6 4;filter:drop-shadow(0 0 2px rgba(0,0,0,.8))}
.box.new{stroke:var(--new);filter:drop-shadow(0 0 2px rgba(0,0,0,.8))}
.tag{position:absolute;transform:translateY(-100%);font:700 11px/1 system-ui,sans-serif;padding:3px 5px;border-radius:4px;white-space:nowrap;color:#0f172a;pointer-events:none}
.tag.inside,.tag.under{transform:translateY(3px)}
.tag.old{background:var(--old)}.tag.new{background:var(--new)}
.shot.missing{aspect-ratio:16/7;display:flex;align-items:center;justify-content:center;text-align:center;color:#cbd5e1;background:repeating-linear-gradient(45deg,#1e293b 0 14px,#273449 14px 28px)}
.shot.missing div{max-width:80%}.shot.missing strong{display:block;font-size:16px;color:#fff}.shot.missing .why{font-size:13px}
.caption{padding:14px 16px 16px}
.chip{display:inline-block;font-size:11px;font-weight:700;letter-spacing:.04em;color:#fff;background:var(--chip);border-radius:999px;padding:2px 10px}
.caption h3{margin:8px 0 0;font-size:16px;word-break:break-all}
.where{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;color:var(--muted);margin:2px 0 8px;word-break:break-all}
.detail{margin:0 0 8px;font-size:14px}
.facts{display:flex;flex-wrap:wrap;gap:4px 14px;margin:0;font-size:12px;color:var(--muted)}
code{font:11px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f1f5f9;border-radius:4px;padding:1px 4px;color:var(--ink)}
.left-out{color:var(--warn)}
footer{color:var(--muted);font-size:12px;text-align:center;margin:30px 0 10px}
@media (max-width:860px){.panels{grid-template-columns:1fr}}
`;

/** Puts each image into every place that shows it: the file holds each image once. */
const SCRIPT = `for(const img of document.querySelectorAll('img[data-image]')){img.src=IMAGES[Number(img.dataset.image)];}`;

export function renderReportHtml(page: ReportPage): string {
  const { figures } = page;
  const { summary } = figures;
  // JSON in a script: "<" escaped so that no data can close the script element.
  const script = `const IMAGES=${JSON.stringify(page.images).replace(/</g, '\\u003c')};${SCRIPT}`;
  const scriptHash = createHash('sha256').update(script).digest('base64');
  const policy = `default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-${scriptHash}'; form-action 'none'; base-uri 'none'`;
  const meta = [
    `<span class="badge ${escapeHtml(summary.status)}">${escapeHtml(summary.status)}</span>`,
    `<span>into <b>${escapeHtml(summary.targetCollectionId)}</b> on face model <b>${escapeHtml(summary.faceModelVersion)}</b></span>`,
    `<span>took <b>${formatDuration(summary.durationMs)}</b></span>`,
    `<span>IoU threshold <b>${escapeHtml(figures.iou.threshold ?? 'unknown')}</b></span>`,
  ].join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${policy}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Reindex report · ${escapeHtml(figures.runId)}</title>
<style>${STYLE}</style></head>
<body>
<header><div class="wrap"><div class="eyebrow">Rekognition reindex · run report</div><h1>${escapeHtml(figures.runId)}</h1><div class="meta">${meta}</div></div></header>
<main>
${renderTotals(figures)}
<div class="panels">
${renderReasons(figures)}
${renderHistogram(figures.iou, figures.rows)}
${renderThroughput(figures.throughput)}
</div>
${renderGallery(page)}
<footer>Made by <code>reindex report</code> at ${escapeHtml(page.generatedAt)} from the run's summary, its ${count(figures.rows)} result rows and ${count(figures.dlq.total)} review messages.</footer>
</main>
<script>${script}</script>
</body></html>
`;
}
