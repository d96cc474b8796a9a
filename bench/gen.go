// Package bench holds logbox's benchmark (go test -bench, see
// docs/benchmarks.md) and the deterministic log generator it feeds.
//
// Nothing here runs in a plain `go test ./...` except a cheap unit test of
// the generator: every stage lives behind a testing.B.
package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// Kind is the kind of an event the generator writes.
type Kind int

// Event kinds, in the order of Mix.
const (
	Nginx Kind = iota // nginx combined access line
	App               // plain app line with a level
	JSON              // one JSON object per line
	Trace             // multi-line Java stack trace (header line + frames)
	kinds
)

func (k Kind) String() string {
	return [...]string{"nginx", "app", "json", "trace"}[k]
}

// RareToken occurs exactly once in every generated file (the rare-term
// query), on line RareLine(n).
const RareToken = "zqxjneedle"

// Phrase occurs in some WARN/ERROR app lines (the phrase query).
const Phrase = "connection reset by peer"

// LineSpan is about how much event time one generated line covers: events
// are 20–170 ms apart and 1.25 lines long on average (1 M lines span about
// 21 hours).
const LineSpan = 76 * time.Millisecond

// RareLine is the 0-based line that carries RareToken in a file of n lines.
func RareLine(n int) int { return min(n-1, n/2) }

// Stats describe what a generator wrote.
type Stats struct {
	Lines  int
	Bytes  int64
	Events [kinds]int // per kind
	LinesK [kinds]int // lines per kind
	Levels map[string]int
	// First and Last are the earliest and latest time written in a line.
	First, Last time.Time
}

// Generator writes a deterministic, realistic mix of log lines: for a
// given seed it always writes the same bytes.
//
// Events: ~55% nginx access lines, ~27% app lines (INFO/WARN/ERROR/DEBUG),
// ~13% JSON lines, ~5% Java stack traces of 3–9 lines. Lines average about
// 195 bytes with the newline.
type Generator struct {
	r     *rand.Rand
	now   time.Time
	line  int // lines produced so far
	n     int // total lines wanted (for the rare token)
	queue []string
	Stats Stats
	buf   strings.Builder
}

// NewGenerator returns a generator of n lines for seed whose first event
// is at start. The same seed, n and start give the same bytes.
func NewGenerator(seed uint64, n int, start time.Time) *Generator {
	return &Generator{
		r:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:   start.UTC(),
		n:     n,
		Stats: Stats{Levels: map[string]int{}},
	}
}

// Next returns the next line without its newline.
func (g *Generator) Next() string {
	if len(g.queue) == 0 {
		g.event()
	}
	l := g.queue[0]
	g.queue = g.queue[1:]
	if g.line == RareLine(g.n) {
		l += " " + RareToken
	}
	g.line++
	g.Stats.Lines++
	g.Stats.Bytes += int64(len(l) + 1)
	return l
}

// WriteFile writes n lines (events cut at n) to path, the first event at
// start.
func WriteFile(path string, seed uint64, n int, start time.Time) (Stats, error) {
	f, err := os.Create(path)
	if err != nil {
		return Stats{}, err
	}
	g := NewGenerator(seed, n, start)
	if err := g.Write(f, n); err != nil {
		f.Close()
		return Stats{}, err
	}
	return g.Stats, f.Close()
}

// Write writes n lines to w.
func (g *Generator) Write(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	for range n {
		bw.WriteString(g.Next())
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func (g *Generator) pick(xs []string) string { return xs[g.r.IntN(len(xs))] }

func (g *Generator) emit(k Kind, lines ...string) {
	g.Stats.Events[k]++
	g.Stats.LinesK[k] += len(lines)
	g.queue = append(g.queue, lines...)
}

func (g *Generator) event() {
	g.now = g.now.Add(time.Duration(20+g.r.IntN(150)) * time.Millisecond)
	if g.Stats.First.IsZero() {
		g.Stats.First = g.now
	}
	g.Stats.Last = g.now
	switch p := g.r.IntN(100); {
	case p < 55:
		g.emit(Nginx, g.nginx())
	case p < 82:
		g.emit(App, g.app())
	case p < 95:
		g.emit(JSON, g.json())
	default:
		g.emit(Trace, g.trace()...)
	}
}

var (
	paths = []string{"/api/v1/users", "/api/v1/orders", "/api/v1/products", "/api/v2/search", "/static/js/app.bundle.js",
		"/static/css/main.css", "/images/logo.png", "/health", "/login", "/checkout/confirm", "/api/v1/cart/items", "/favicon.ico"}
	refs = []string{"-", "https://shop.example.com/", "https://shop.example.com/products/list?category=shoes&sort=price",
		"https://www.google.com/", "https://shop.example.com/checkout/cart"}
	agents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		"curl/8.5.0", "Prometheus/2.53.0", "kube-probe/1.30",
	}
	services = []string{"orders", "payments", "inventory", "users", "search", "gateway", "notifications"}
	classes  = []string{"com.example.orders.OrderService", "com.example.payments.ChargeHandler", "com.example.inventory.StockRepository",
		"com.example.users.SessionManager", "com.example.search.QueryExecutor", "com.example.gateway.RequestRouter"}
	infoMsgs = []string{"order %d processed in %dms", "user %d logged in from %s", "cache refreshed: %d entries in %dms",
		"request %d completed with status 200 after %dms", "scheduled job inventory-sync finished: %d items, %dms"}
	warnMsgs = []string{"slow query on table orders took %dms (threshold 500ms) for customer %d", "retrying upstream call to %s, attempt %d",
		"pool nearly exhausted: %d of %d connections in use", "upstream %s: " + Phrase + ", retrying in %dms"}
	errMsgs = []string{"failed to charge card for order %d: gateway timeout after %dms", "database error: deadlock detected on orders row %d (%dms)",
		"upstream %s: " + Phrase + " after %d bytes", "could not send notification %d: smtp 451 temporary failure"}
	debugMsgs  = []string{"cache hit for key user:%d ttl=%ds", "parsed request headers in %dus for %s", "acquired lock orders:%d after %dus"}
	exceptions = []string{"java.lang.IllegalStateException: order already finalized", "java.net.SocketTimeoutException: Read timed out",
		"java.lang.NullPointerException: Cannot invoke \"com.example.users.User.getId()\" because \"user\" is null",
		"org.postgresql.util.PSQLException: ERROR: deadlock detected"}
	frames = []string{"com.example.orders.OrderService.finalize(OrderService.java:%d)", "com.example.orders.OrderController.confirm(OrderController.java:%d)",
		"org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:%d)", "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:%d)",
		"org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:%d)", "java.base/java.lang.Thread.run(Thread.java:%d)",
		"com.zaxxer.hikari.pool.HikariProxyPreparedStatement.executeQuery(HikariProxyPreparedStatement.java:%d)"}
)

func (g *Generator) ip() string {
	return fmt.Sprintf("%d.%d.%d.%d", 10+g.r.IntN(200), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *Generator) nginx() string {
	method := "GET"
	switch p := g.r.IntN(100); {
	case p >= 97:
		method = "DELETE"
	case p >= 93:
		method = "PUT"
	case p >= 85:
		method = "POST"
	}
	status := 200
	switch p := g.r.IntN(100); {
	case p >= 98:
		status = 500
	case p >= 94:
		status = 404
	case p >= 90:
		status = 304
	case p >= 88:
		status = 302
	}
	path := g.pick(paths)
	if strings.HasPrefix(path, "/api/") {
		path += fmt.Sprintf("/%d?page=%d&limit=%d", g.r.IntN(100000), g.r.IntN(20), 10*(1+g.r.IntN(10)))
	}
	return fmt.Sprintf(`%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s" rt=%.3f uct="0.%03d" urt="%.3f" upstream=%s:8080`,
		g.ip(), g.now.Format("02/Jan/2006:15:04:05 -0700"), method, path, status, g.r.IntN(60000),
		g.pick(refs), g.pick(agents), g.r.Float64(), g.r.IntN(10), g.r.Float64(), g.ip())
}

func (g *Generator) level() string {
	switch p := g.r.IntN(100); {
	case p < 68:
		return "INFO"
	case p < 82:
		return "DEBUG"
	case p < 93:
		return "WARN"
	default:
		return "ERROR"
	}
}

func (g *Generator) msg(level string) string {
	var tmpl string
	switch level {
	case "INFO":
		tmpl = g.pick(infoMsgs)
	case "WARN":
		tmpl = g.pick(warnMsgs)
	case "ERROR":
		tmpl = g.pick(errMsgs)
	default:
		tmpl = g.pick(debugMsgs)
	}
	// Fill every verb in order: %d with a number, %s with a host or IP.
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] == '%' && i+1 < len(tmpl) {
			switch tmpl[i+1] {
			case 'd':
				fmt.Fprint(&b, g.r.IntN(100000))
				i++
				continue
			case 's':
				b.WriteString(g.pick(services) + ".svc.cluster.local:" + fmt.Sprint(8000+g.r.IntN(100)))
				i++
				continue
			}
		}
		b.WriteByte(tmpl[i])
	}
	return b.String()
}

func (g *Generator) app() string {
	lvl := g.level()
	g.Stats.Levels[lvl]++
	return fmt.Sprintf("%s %-5s [http-nio-8080-exec-%d] %s - %s tenant=t%04d trace_id=%016x",
		g.now.Format("2006-01-02T15:04:05.000Z07:00"), lvl, 1+g.r.IntN(32), g.pick(classes), g.msg(lvl), g.r.IntN(10000), g.r.Uint64())
}

func (g *Generator) json() string {
	lvl := strings.ToLower(g.level())
	return fmt.Sprintf(`{"ts":"%s","level":"%s","service":"%s","msg":"%s","request_id":"%08x-%04x-%04x","user_id":%d,"duration_ms":%d,"bytes":%d}`,
		g.now.Format(time.RFC3339Nano), lvl, g.pick(services), g.msg(strings.ToUpper(lvl)), g.r.Uint32(), g.r.IntN(1<<16), g.r.IntN(1<<16),
		g.r.IntN(1000000), g.r.IntN(5000), g.r.IntN(200000))
}

func (g *Generator) trace() []string {
	g.Stats.Levels["ERROR"]++
	out := []string{fmt.Sprintf("%s ERROR [http-nio-8080-exec-%d] %s - unhandled exception while processing request %d",
		g.now.Format("2006-01-02T15:04:05.000Z07:00"), 1+g.r.IntN(32), g.pick(classes), g.r.IntN(1000000)), g.pick(exceptions)}
	for range 1 + g.r.IntN(7) {
		out = append(out, "\tat "+fmt.Sprintf(g.pick(frames), 20+g.r.IntN(900)))
	}
	return out
}
