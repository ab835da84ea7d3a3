// The network view (/ui/network): every node of this storjnetd process (GET /api/network) on a circle by
// id, joined by their routing-table edges; each node links to its own page on its own API port.
'use strict';

(() => {
  const S = Storjnet, { el, setText, make, fmt } = S;

  // A node's page: its API port on the host this page came from, the token in the fragment (another port is
  // another origin, with its own sessionStorage).
  function pageOf(node) {
    const port = new URL(node.api).port;
    return `${location.protocol}//${location.hostname}:${port}/ui#token=${encodeURIComponent(S.token())}`;
  }

  // Position on the circle: the id's top 32 bits as a fraction of the id space, then spread apart where
  // two dots would overlap (ids close together), keeping their order on the circle.
  const angle = (id) => (parseInt(id.slice(0, 8), 16) / 2 ** 32) * 2 * Math.PI;
  function spread(angles, minGap) {
    const n = angles.length;
    if (n < 2) return angles.slice();
    const gap = Math.min(minGap, (2 * Math.PI) / n);
    const order = angles.map((_, i) => i).sort((x, y) => angles[x] - angles[y]);
    // Start after the widest empty arc and push each dot at least `gap` past the one before it.
    let first = 0, widest = -1;
    for (let k = 0; k < n; k++) {
      const prev = angles[order[(k + n - 1) % n]] - (k === 0 ? 2 * Math.PI : 0);
      if (angles[order[k]] - prev > widest) { widest = angles[order[k]] - prev; first = k; }
    }
    const out = angles.slice();
    let last = angles[order[first]];
    for (let k = 1; k < n; k++) {
      const i = order[(first + k) % n];
      const a = angles[i] + (first + k >= n ? 2 * Math.PI : 0);
      last = Math.max(a, last + gap);
      out[i] = last;
    }
    // Crowded all the way round: even spacing in the same order.
    if (last + gap > angles[order[first]] + 2 * Math.PI + 1e-9)
      for (let k = 0; k < n; k++) out[order[(first + k) % n]] = angles[order[first]] + k * (2 * Math.PI / n);
    return out;
  }

  const W = 720, H = 560, cx = W / 2, cy = H / 2, rad = Math.min(W, H) / 2 - 48;
  let nodesFor = '', linksFor = '', pos = [];
  // The dots are rebuilt only when the set of nodes changes, and the edges when the links do, so a poll
  // never replaces the element under the pointer between a press and its release.
  function draw(nodes) {
    const svg = el('net');
    const idKey = nodes.map((n) => n.index + ':' + n.id).join(';');
    const linkKey = nodes.map((n) => n.links.join(',')).join(';');
    if (idKey !== nodesFor) {
      nodesFor = idKey;
      linksFor = '';
      svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
      svg.replaceChildren();
      svg.append(make('circle', { cx, cy, r: rad, class: 'ring' }));
      svg.append(make('g', { class: 'edges' }));
      const r = nodes.length > 60 ? 5 : 11;
      const angles = spread(nodes.map((n) => angle(n.id)), (2 * r + 3) / rad);
      pos = angles.map((a) => [cx + rad * Math.sin(a), cy - rad * Math.cos(a)]);
      const here = Number(location.port || 80);
      nodes.forEach((n, i) => {
        const [x, y] = pos[i];
        const a = make('svg:a', { href: pageOf(n), class: 'net-node', 'data-index': String(n.index), 'data-id': n.id });
        const self = Number(new URL(n.api).port) === here;
        a.append(make('circle', { cx: x, cy: y, r, class: self ? 'dot self' : 'dot' }));
        if (nodes.length <= 60)
          a.append(make('text', { x, y: y + 4, class: 'dot-label', 'text-anchor': 'middle' }, String(n.index)));
        a.append(make('title', {}, `node ${n.index}  ${n.id}`));
        // Pointing at a node highlights its edges.
        a.addEventListener('mouseenter', () => svg.querySelectorAll('.edge').forEach((e) =>
          e.classList.toggle('hot', e.dataset.a === String(i) || e.dataset.b === String(i))));
        a.addEventListener('mouseleave', () => svg.querySelectorAll('.hot').forEach((e) => e.classList.remove('hot')));
        svg.append(a);
      });
    }
    nodes.forEach((n, i) => {
      const title = svg.querySelector(`.net-node[data-index="${n.index}"] title`);
      if (title) title.textContent = `node ${n.index}  ${n.id}\n${n.links.length} local + ${n.other_contacts} other contacts`;
    });
    if (linkKey === linksFor) return;
    linksFor = linkKey;
    // Edges: once per pair, "mutual" when each holds the other.
    const has = nodes.map((n) => new Set(n.links));
    const edges = svg.querySelector('g.edges');
    edges.replaceChildren();
    let count = 0;
    nodes.forEach((n, i) => n.links.forEach((j) => {
      if (j === i || !nodes[j]) return;
      const mutual = has[j].has(i);
      if (mutual && j < i) return;
      const [x1, y1] = pos[i], [x2, y2] = pos[j];
      // A chord bent towards the centre keeps the picture readable.
      const qx = (x1 + x2) / 2 * 0.6 + cx * 0.4, qy = (y1 + y2) / 2 * 0.6 + cy * 0.4;
      edges.append(make('path', { d: `M${x1.toFixed(1)} ${y1.toFixed(1)} Q${qx.toFixed(1)} ${qy.toFixed(1)} ${x2.toFixed(1)} ${y2.toFixed(1)}`,
                                  class: mutual ? 'edge mutual' : 'edge', 'data-a': String(i), 'data-b': String(j) }));
      count++;
    }));
    svg.dataset.nodes = String(nodes.length);
    svg.dataset.edges = String(count);
    setText('net-summary', `${nodes.length} nodes, ${count} routing-table edges`);
  }

  function table(nodes) {
    const tbody = el('nodes').tBodies[0];
    tbody.replaceChildren(...nodes.map((n) => {
      const tr = make('tr');
      const link = make('a', { href: pageOf(n) }, n.api);
      const id = make('code', { title: n.id }, fmt.shortId(n.id));
      for (const c of [String(n.index), id, n.udp, link, String(n.links.length), String(n.other_contacts)]) {
        const td = make('td');
        td.append(c);
        tr.append(td);
      }
      return tr;
    }));
  }

  S.poll(async () => {
    const net = await S.getJson('/api/network');
    draw(net.nodes);
    table(net.nodes);
    setText('footer', `updated ${new Date().toLocaleTimeString()}`);
  }, 2000);
})();
