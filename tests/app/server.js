// A small real backend for the end-to-end tests: Express instrumented with prom-client the way
// the production backend is, with metric and label names taken from the environment so a test
// can prove that dashboards and rules follow the stack's vars.http_metrics, not hard-coded names.
'use strict';

const express = require('express');
const client = require('prom-client');

// Every name can be changed; the defaults are what the reference stack expects.
const env = (name, fallback) => {
	const v = process.env[name];
	return v === undefined || v === '' ? fallback : v;
};
const names = {
	requestsTotal: env('HTTP_REQUESTS_TOTAL', 'http_requests_total'),
	durationSeconds: env('HTTP_DURATION_SECONDS', 'http_request_duration_seconds'),
	method: env('HTTP_METHOD_LABEL', 'method'),
	route: env('HTTP_ROUTE_LABEL', 'route'),
	status: env('HTTP_STATUS_LABEL', 'status_code'),
};
const port = Number(env('PORT', '0'));
const host = env('HOST', '127.0.0.1');

const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

const labelNames = [names.method, names.route, names.status];
const requests = new client.Counter({
	name: names.requestsTotal,
	help: 'HTTP requests served, by method, route pattern and status code.',
	labelNames,
	registers: [registry],
});
const duration = new client.Histogram({
	name: names.durationSeconds,
	help: 'HTTP request duration in seconds, by method, route pattern and status code.',
	labelNames,
	// prom-client's defaults (5 ms … 10 s) bracket the 1 s latency alert threshold.
	buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
	registers: [registry],
});

const app = express();
app.disable('x-powered-by');

// Records every request except scrapes. The route label is the matched Express pattern
// (`/api/users/:id`), never the raw URL, so ids cannot explode the label's cardinality;
// a request that matched no route is `<unmatched>`.
app.use((req, res, next) => {
	if (req.path === '/metrics') {
		return next();
	}
	const stop = duration.startTimer();
	res.on('finish', () => {
		const route = req.route ? `${req.baseUrl}${req.route.path}` : '<unmatched>';
		const labels = {
			[names.method]: req.method,
			[names.route]: route,
			[names.status]: String(res.statusCode),
		};
		requests.inc(labels);
		stop(labels);
	});
	next();
});

// A normal endpoint. It builds a modest payload, as real handlers do, which also gives the
// garbage collector (and so nodejs_gc_duration_seconds) something to do.
app.get('/api/users/:id', (req, res) => {
	const orders = Array.from({ length: 200 }, (_, i) => ({ id: `${req.params.id}-${i}`, total: i * 3 }));
	res.json({ id: req.params.id, orders: orders.length, sum: orders.reduce((a, o) => a + o.total, 0) });
});

// Fails on demand: ?status=503 (any 4xx/5xx), 500 with ?fail=1, else 200.
app.get('/api/orders/:id', (req, res) => {
	const status = Number(req.query.status) || (req.query.fail ? 500 : 200);
	res.status(status >= 100 && status < 600 ? status : 500).json({ id: req.params.id, status });
});

// Slow on demand: answers after ?ms= milliseconds (capped at 30 s).
app.get('/api/slow', (req, res) => {
	const ms = Math.min(Math.max(Number(req.query.ms) || 0, 0), 30000);
	setTimeout(() => res.json({ slept_ms: ms }), ms);
});

app.get('/metrics', async (_req, res) => {
	try {
		res.set('Content-Type', registry.contentType);
		res.end(await registry.metrics());
	} catch (err) {
		res.status(500).end(String(err));
	}
});

const server = app.listen(port, host, () => {
	// The handshake: the first stdout line names the port (useful when PORT=0 picked one).
	process.stdout.write(`LISTENING ${server.address().port}\n`);
});
server.on('error', err => {
	process.stderr.write(`cannot listen on ${host}:${port}: ${err.message}\n`);
	process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
	process.on(signal, () => server.close(() => process.exit(0)));
}
