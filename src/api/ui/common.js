// Shared by the status pages: the API token, authenticated GETs, number formats, small SVG charts.
// Plain JavaScript, no library: everything the pages need is here.
'use strict';

const Storjnet = (() => {
  const TOKEN_KEY = 'storjnet-api-token';
  const SVG = 'http://www.w3.org/2000/svg';

  // The token comes from the URL fragment (#token=..., never a query string, so it is not sent to the
  // server nor kept in logs), then lives in this tab's sessionStorage; the fragment is removed from the
  // address bar and history at once.
  function takeToken() {
    const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }
  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  class Unauthorized extends Error {}

  async function getJson(path) {
    const res = await fetch(path, { headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store' });
    if (res.status === 401) throw new Unauthorized('the API token was refused');
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
    return res.json();
  }

  function el(id) { return document.getElementById(id); }
  function setText(id, text) {
    const e = el(id);
    if (e.textContent !== String(text)) e.textContent = text;
  }
  // An element: SVG for the chart shapes (and for 'svg:a'), HTML otherwise.
  function make(tag, attrs = {}, text) {
    const svgTags = ['svg', 'line', 'path', 'rect', 'circle', 'text', 'g', 'title', 'polyline'];
    const e = tag === 'svg:a' ? document.createElementNS(SVG, 'a')
      : svgTags.includes(tag) ? document.createElementNS(SVG, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function setLive(state, text) {
    const p = el('live');
    p.dataset.state = state;
    p.textContent = text;
  }

  // Shows the token form; resolves once a token was entered.
  function askToken(message) {
    el('main').hidden = true;
    el('token-form-box').hidden = false;
    const err = el('token-error');
    err.hidden = !message;
    err.textContent = message || '';
    setLive('error', 'token needed');
    return new Promise((resolve) => {
      el('token-form').onsubmit = (ev) => {
        ev.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, el('token-input').value.trim());
        el('token-input').value = '';
        el('token-form-box').hidden = true;
        resolve();
      };
    });
  }

  // Calls `load` now and then every `period` ms (the next call starts after the previous ended), asking for
  // the token first when there is none and again when it is refused.
  async function poll(load, period) {
    if (!takeToken()) await askToken();
    for (;;) {
      try {
        await load();
        el('main').hidden = false;
        setLive('ok', 'live');
      } catch (e) {
        if (e instanceof Unauthorized) {
          sessionStorage.removeItem(TOKEN_KEY);
          await askToken('The API token was refused. Enter the current one.');
          continue;
        }
        setLive('error', 'no answer');
        el('footer').textContent = String(e.message || e);
      }
      await new Promise((r) => setTimeout(r, period));
    }
  }

  const fmt = {
    int: (n) => Math.round(n).toLocaleString('en-US'),
    num(n) {
      if (n === 0) return '0';
      if (Math.abs(n) >= 100) return fmt.int(n);
      if (Math.abs(n) >= 10) return n.toFixed(1);
      return n.toFixed(2);
    },
    bytes(n) {
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0;
      while (n >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
      return (i === 0 ? String(Math.round(n)) : n.toFixed(n >= 100 ? 0 : 1)) + ' ' + units[i];
    },
    duration(s) {
      const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
      if (d) return d + 'd ' + h + 'h';
      if (h) return h + 'h ' + m + 'm';
      if (m) return m + 'm ' + (s % 60) + 's';
      return s + 's';
    },
    // An axis label: at most 3 significant digits, no trailing zeros, thousands as k.
    tick: (v) => (v >= 10000 ? Number((v / 1000).toPrecision(3)) + 'k' : String(Number(v.toPrecision(3)))),
    shortId: (hex) => hex.slice(0, 8) + '…' + hex.slice(-4),
  };

  // A value axis maximum that reads well: 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 4, 8, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // A line chart in `svg` of `series` ([{name, color, points: [[t_ms, value], ...]}]) over the last
  // `windowMs` before `now`; the legend (an element) shows each series' latest value. Gaps (null values) break
  // the line; with no value at all it says `emptyText`. The svg records how many values it drew and the newest
  // one's time (data-points, data-last-t).
  function lineChart(svg, legend, series, now, windowMs, unit, emptyText) {
    const W = 600, H = 170, L = 46, R = 10, T = 8, B = 20;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.replaceChildren();
    let max = 0, count = 0, lastT = 0;
    for (const s of series)
      for (const [t, v] of s.points) {
        if (v === null) continue;
        max = Math.max(max, v);
        count++;
        lastT = Math.max(lastT, t);
      }
    max = niceMax(max);
    const x = (t) => L + (W - L - R) * (1 - (now - t) / windowMs);
    const y = (v) => T + (H - T - B) * (1 - v / max);
    for (let i = 0; i <= 4; ++i) {
      const v = (max * i) / 4;
      svg.append(make('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: i ? 'grid' : 'axis' }));
      svg.append(make('text', { x: L - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, fmt.tick(v)));
    }
    // Time ticks: every 10 s up to a minute's window, 30 s up to 2.5 minutes, then every minute.
    const step = windowMs <= 60000 ? 10000 : windowMs <= 150000 ? 30000 : 60000;
    for (let ago = 0; ago < windowMs; ago += step) {
      const t = now - ago;
      svg.append(make('line', { x1: x(t), x2: x(t), y1: T, y2: H - B, class: 'grid' }));
      const label = ago === 0 ? 'now' : ago % 60000 ? '-' + ago / 1000 + ' s' : '-' + ago / 60000 + ' min';
      svg.append(make('text', { x: x(t), y: H - 5, class: 'tick', 'text-anchor': ago === 0 ? 'end' : 'middle' }, label));
    }
    for (const s of series) {
      let d = '';
      const shown = s.points.map(([t, v]) => (v === null || now - t > windowMs ? null : [x(t), y(v)]));
      shown.forEach((p, i) => {
        if (!p) return;
        const joined = i > 0 && shown[i - 1];
        d += (joined ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1);
        // A value with no neighbour would draw nothing as a line: a dot instead.
        if (!joined && !shown[i + 1]) svg.append(make('circle', { cx: p[0], cy: p[1], r: 2.5, fill: s.color }));
      });
      if (d) svg.append(make('path', { d, class: 'series', stroke: s.color }));
    }
    if (!count) svg.append(make('text', { x: W / 2, y: H / 2, class: 'empty', 'text-anchor': 'middle' }, emptyText || 'collecting…'));
    svg.dataset.points = String(count);
    svg.dataset.lastT = String(lastT);
    legend.replaceChildren(...series.map((s) => {
      const last = [...s.points].reverse().find(([, v]) => v !== null);
      const item = make('span', { class: 'key' });
      const swatch = make('i');
      swatch.style.background = s.color;  // CSSOM, not a style attribute: the page's CSP allows no inline style
      item.append(swatch, s.name + ' ' + (last ? fmt.num(last[1]) : '–') + (unit || ''));
      return item;
    }));
  }

  const palette = ['#2f7ed8', '#e4572e', '#17a589', '#f3a712', '#8e44ad', '#7f8c8d'];

  return { takeToken, token, getJson, el, setText, make, setLive, poll, fmt, lineChart, palette, niceMax };
})();
