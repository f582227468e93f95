// WCAG 2 contrast of every visible piece of text on a page, from the browser's computed styles:
// the text colour against the background actually behind it (semi-transparent backgrounds, such as
// the selected row's tint, blended over what is under them). Run in the page with page.evaluate.

export type ContrastFailure = { text: string; selector: string; color: string; background: string; ratio: number };

/** A browser expression: the text nodes whose contrast is below `min`, as ContrastFailure[]. */
export function contrastFailuresScript(min: number): string {
  return `(() => {
    const min = ${JSON.stringify(min)};
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 1;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    // Any CSS colour (rgb(), color(srgb …), color-mix results) to [r, g, b, a] through the canvas.
    const rgba = (css) => {
      ctx.clearRect(0, 0, 1, 1);
      ctx.fillStyle = '#000';
      ctx.fillStyle = css;
      ctx.fillRect(0, 0, 1, 1);
      const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
      return [r, g, b, a / 255];
    };
    const over = (top, under) => top.slice(0, 3).map((c, i) => c * top[3] + under[i] * (1 - top[3])).concat(1);
    const background = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = rgba(getComputedStyle(e).backgroundColor);
        if (c[3] > 0) layers.push(c);
        if (c[3] === 1) break;
      }
      let acc = layers.length && layers[layers.length - 1][3] === 1 ? layers.pop() : rgba(getComputedStyle(document.documentElement).backgroundColor || '#fff');
      if (acc[3] < 1) acc = over(acc, [255, 255, 255, 1]);
      while (layers.length) acc = over(layers.pop(), acc);
      return acc;
    };
    const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    const failures = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const text = n.textContent.trim();
      const el = n.parentElement;
      if (!text || !el || !el.checkVisibility({ visibilityProperty: true, opacityProperty: true }) || !el.getClientRects().length) continue;
      const style = getComputedStyle(el);
      const bg = background(el);
      const fg = over(rgba(style.color), bg);
      const r = ratio(fg, bg);
      if (r < min) failures.push({ text: text.slice(0, 40), selector: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className ? '.' + String(el.className).split(' ').join('.') : ''), color: style.color, background: 'rgb(' + bg.slice(0, 3).map(Math.round).join(', ') + ')', ratio: Math.round(r * 100) / 100 });
    }
    // Placeholders are text too.
    for (const input of document.querySelectorAll('input[placeholder]:not([type=hidden]), textarea[placeholder]')) {
      if (!input.checkVisibility() || input.value) continue;
      const bg = background(input);
      const fg = over(rgba(getComputedStyle(input, '::placeholder').color), bg);
      const r = ratio(fg, bg);
      if (r < min) failures.push({ text: input.placeholder.slice(0, 40), selector: 'placeholder of #' + input.id, color: getComputedStyle(input, '::placeholder').color, background: 'rgb(' + bg.slice(0, 3).map(Math.round).join(', ') + ')', ratio: Math.round(r * 100) / 100 });
    }
    return failures;
  })()`;
}
