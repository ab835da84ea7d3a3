// The node page (/ui): reads GET /api/status once a second and shows it.
'use strict';

(() => {
  const S = Storjnet, { el, setText, make, fmt } = S;
  const WINDOW_MS = 5 * 60 * 1000;
  const P = S.palette;

  function rows(tbodyParent, items, cells, empty) {
    const tbody = el(tbodyParent).tBodies[0];
    if (!items.length) {
      const tr = make('tr');
      tr.append(make('td', { colspan: el(tbodyParent).tHead.rows[0].cells.length, class: 'none' }, empty));
      tbody.replaceChildren(tr);
      return;
    }
    tbody.replaceChildren(...items.map((it) => {
      const tr = make('tr');
      for (const c of cells(it)) {
        const td = make('td');
        if (c instanceof Node) td.append(c); else td.textContent = c;
        tr.append(td);
      }
      return tr;
    }));
  }
  const code = (text, title) => make('code', title ? { title } : {}, text);

  function meter(id, used, max) {
    el(id).style.width = Math.min(100, max ? (100 * used) / max : 0).toFixed(1) + '%';
  }

  // Buckets by distance: one bar per bucket, its frame the capacity k, its fill the contacts.
  function routing(r) {
    const svg = el('routing');
    const n = r.buckets.length, slot = n <= 16 ? 40 : 30, H = 150, T = 18, B = 22, L = 30, W = L + n * slot + 4;
    const bw = slot;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    svg.replaceChildren();
    const y = (v) => T + (H - T - B) * (1 - v / r.k);
    for (const v of [0, r.k / 2, r.k]) {
      svg.append(make('line', { x1: L, x2: W, y1: y(v), y2: y(v), class: 'grid' }));
      svg.append(make('text', { x: L - 4, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, fmt.int(v)));
    }
    r.buckets.forEach((count, i) => {
      const x = L + i * bw + 2, w = Math.max(bw - 4, 2);
      const g = make('g', { class: 'bucket' });
      g.append(make('rect', { x, y: y(r.k), width: w, height: y(0) - y(r.k), class: 'cap' }));
      if (count) g.append(make('rect', { x, y: y(Math.min(count, r.k)), width: w, height: y(0) - y(Math.min(count, r.k)),
                                          class: count >= r.k ? 'fill full' : 'fill' }));
      g.append(make('title', {}, `bucket ${i}: ${count} of ${r.k}`));
      if (count) g.append(make('text', { x: x + w / 2, y: y(Math.min(count, r.k)) - 4, class: 'count', 'text-anchor': 'middle' }, String(count)));
      svg.append(g);
      svg.append(make('text', { x: x + w / 2, y: H - 6, class: 'tick', 'text-anchor': 'middle' }, String(i)));
    });
    const full = r.buckets.filter((c) => c >= r.k).length;
    setText('routing-summary', `${r.contacts} contacts in ${r.buckets.filter((c) => c).length} buckets, ${full} full, k = ${r.k}`);
  }

  function charts(st) {
    const h = st.history, now = st.now;
    // The window: the last 5 minutes, or less while the history is younger (at least a minute).
    const span = h.samples.length ? now - h.samples[0].t + 1000 : 0;
    const win = Math.min(WINDOW_MS, Math.max(60000, Math.ceil(span / 10000) * 10000));
    const per = (s, v) => (s.ms > 0 ? (v * 1000) / s.ms : 0);
    const pts = (f) => h.samples.map((s) => [s.t, f(s)]);
    S.lineChart(el('chart-datagrams'), el('legend-datagrams'), [
      { name: 'in', color: P[0], points: pts((s) => per(s, s.dg_in)) },
      { name: 'out', color: P[1], points: pts((s) => per(s, s.dg_out)) },
    ], now, win, '/s');
    S.lineChart(el('chart-lookups'), el('legend-lookups'), [
      { name: 'started', color: P[0], points: pts((s) => per(s, s.lookups)) },
      { name: 'completed', color: P[2], points: pts((s) => per(s, s.lookups_done)) },
    ], now, win, '/s');
    const lat = (key) => pts((s) => (s.lookups_done ? s[key] / 1000 : null));
    S.lineChart(el('chart-latency'), el('legend-latency'), [
      { name: 'p50', color: P[2], points: lat('p50_us') },
      { name: 'p90', color: P[3], points: lat('p90_us') },
      { name: 'p99', color: P[1], points: lat('p99_us') },
    ], now, win, ' ms', 'no lookup completed in this window');
    // Drops: the reasons seen in the window, largest first (up to 4), the rest as "other".
    const totals = new Map();
    for (const s of h.samples) for (const [r, n] of s.top_drops) totals.set(r, (totals.get(r) || 0) + n);
    const shown = [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([r]) => r);
    const dropSeries = [{ name: 'all', color: P[5], points: pts((s) => per(s, s.drops)) }];
    shown.forEach((r, i) => dropSeries.push({
      name: h.drop_reasons[r], color: P[[1, 3, 4, 0][i]],
      points: pts((s) => per(s, (s.top_drops.find(([x]) => x === r) || [0, 0])[1])),
    }));
    S.lineChart(el('chart-drops'), el('legend-drops'), dropSeries, now, win, '/s');
    setText('history-summary', `${h.samples.length} of ${h.capacity} seconds kept`);
  }

  function show(st) {
    const last = st.history.samples[st.history.samples.length - 1];
    const rate = (v) => (last && last.ms ? fmt.num((v * 1000) / last.ms) : '0');
    document.title = 'storjnet ' + st.id.slice(0, 8);
    setText('bar-title', 'node ' + fmt.shortId(st.id));
    setText('node-id', st.id);
    setText('version', `${st.version} (protocol ${st.protocol})`);
    setText('uptime', fmt.duration(st.uptime_s));
    setText('addr-udp', st.addresses.udp);
    setText('addr-api', st.addresses.api);
    setText('addr-observed', st.addresses.observed || 'not known yet');
    const reach = el('reachability');
    reach.dataset.kind = st.addresses.reachability;
    setText('reachability', { direct: 'direct (no NAT seen)', translated: 'behind a NAT (address translated)',
                              unknown: 'unknown (no peer answered yet)' }[st.addresses.reachability] || st.addresses.reachability);
    setText('node-index', `node ${st.node.index} of ${st.node.of}`);
    el('network-link').hidden = st.node.of < 2;

    setText('peer-count', fmt.int(st.peers.length));
    setText('dg-in-rate', last ? rate(last.dg_in) : '0');
    setText('dg-out-rate', last ? rate(last.dg_out) : '0');
    setText('drop-total', fmt.int(st.totals.drops));
    const t = st.totals;
    setText('total-in', `${fmt.int(t.datagrams_in)} datagrams, ${fmt.bytes(t.bytes_in)}`);
    setText('total-out', `${fmt.int(t.datagrams_out)} datagrams, ${fmt.bytes(t.bytes_out)}`);
    setText('total-lookups', fmt.int(t.lookups));
    setText('total-retx', `${fmt.int(t.retransmits)} / ${fmt.int(t.timeouts)}`);

    setText('store-values', `${fmt.int(st.store.values)} of ${fmt.int(st.store.max_values)}`);
    setText('store-bytes', `${fmt.bytes(st.store.bytes)} of ${fmt.bytes(st.store.max_bytes)}`);
    meter('store-values-bar', st.store.values, st.store.max_values);
    meter('store-bytes-bar', st.store.bytes, st.store.max_bytes);
    const q = st.queues;
    setText('q-messages', fmt.int(q.messages));
    setText('q-rpcs', fmt.int(q.pending_rpcs));
    setText('q-reassembly', fmt.bytes(q.reassembly_bytes));
    setText('q-sessions', fmt.int(q.sessions));

    routing(st.routing);
    charts(st);

    setText('peers-summary', `${st.peers.length}`);
    const peers = [...st.peers].sort((a, b) => b.bucket - a.bucket || (a.id < b.id ? -1 : 1));
    rows('peers', peers, (p) => [code(fmt.shortId(p.id), p.id), p.address, String(p.bucket)], 'no peers yet');
    rows('streams', st.streams, (s) => [code(s.id.slice(0, 8), s.id), code(fmt.shortId(s.peer), s.peer),
                                         s.inbound ? 'in' : 'out', fmt.bytes(s.unread),
                                         fmt.bytes(s.in_per_s) + '/s', fmt.bytes(s.out_per_s) + '/s'], 'no open streams');
    const drops = Object.entries(st.drops).sort((a, b) => b[1] - a[1]);
    rows('drops', drops, ([r, n]) => [r, fmt.int(n)], 'none');

    const subs = el('subscriptions');
    if (!st.subscriptions.length) {
      subs.replaceChildren(make('p', { class: 'none' }, 'not subscribed to any topic'));
    } else {
      subs.replaceChildren(...st.subscriptions.map((s) => {
        const box = make('div', { class: 'topic' });
        const head = make('div', { class: 'topic-head' });
        head.append(make('strong', {}, s.topic),
                    make('span', { class: 'muted' }, `${fmt.int(s.events)} event${s.events === 1 ? '' : 's'} received`));
        const list = make('ul', { class: 'events' });
        for (const e of s.recent) {
          const li = make('li');
          li.append(make('time', {}, new Date(e.t).toLocaleTimeString()), code(e.event));
          list.append(li);
        }
        if (!s.recent.length) list.append(make('li', { class: 'none' }, 'no events yet'));
        box.append(head, list);
        return box;
      }));
    }
    setText('footer', `storjnetd ${st.version} · updated ${new Date(st.now).toLocaleTimeString()}`);
  }

  S.poll(async () => show(await S.getJson('/api/status')), 1000);
})();
