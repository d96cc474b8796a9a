package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/chromedp/chromedp"

	"github.com/logbox/logbox/appliance"
	"github.com/logbox/logbox/appliance/kafkatest"
	"github.com/logbox/logbox/appliance/pipeline"
)

// fleetAnswer is the part of an answer (search, histogram, facets, stats,
// patterns) that says whether the live indexers gave all of it.
type fleetAnswer struct {
	Total   int                     `json:"total"`
	Partial bool                    `json:"partial"`
	Missing []pipeline.MissingRange `json:"missing"`
}

// TestBrowserFleetPartial shows a really partial answer in the page: the
// topic holds lines at offsets 0–199 of each of its two partitions, the
// indexers' consumer group has committed offset 100 of each before the
// only indexer starts, and that indexer fills no gaps, so no live indexer
// holds offsets 0–99. Discover, Visualize and the patterns say so in a
// banner naming both ranges, and the Status view lists the indexer, what
// it holds and the partitions with what is missing. Started again with
// gap fill on, the indexer reads offsets 0–99 from Kafka, and the banner
// goes.
func TestBrowserFleetPartial(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", chromiumPath, err)
		}
		t.Skipf("%s not installed: %v", chromiumPath, err)
	}
	k := kafkatest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()

	const perPart, skipped = 200, 100 // lines per partition; offsets committed before the indexer starts
	topic, group := kafkatest.UniqueName(t, "uifleet"), kafkatest.UniqueName(t, "uifleet")
	parts := []string{pipeline.PartName(topic, 0), pipeline.PartName(topic, 1)}

	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	client, err := sarama.NewClient(k.Brokers, sc)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatalf("kafka admin: %v", err)
	}
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	// The lines, as an agent ships them: a JSON record per message.
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	base := time.Now().Add(-30 * time.Minute).UTC().Truncate(time.Second)
	var msgs []*sarama.ProducerMessage
	for p := range int32(2) {
		for i := range perPart {
			src := fmt.Sprintf("/var/log/part%d.log", p)
			v, err := json.Marshal(pipeline.Record{
				TS: base.Add(time.Duration(i) * time.Second), Host: "fleetbox", Source: src, FileID: "fid-" + src,
				Offset: int64(i) * 64, Line: fmt.Sprintf("INFO fleettok part %d line %03d", p, i),
			})
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p, Key: sarama.StringEncoder("fleetbox|" + src), Value: sarama.ByteEncoder(v)})
		}
	}
	if err := producer.SendMessages(msgs); err != nil {
		t.Fatalf("produce: %v", err)
	}
	producer.Close()
	for p := range int32(2) {
		if hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest); err != nil || hwm != perPart {
			t.Fatalf("high-water mark of partition %d = %d (%v), want %d", p, hwm, err, perPart)
		}
	}
	// The group is past the first half before any indexer read it: a
	// commit outside any generation, as an operator's tool makes.
	coord, err := client.Coordinator(group)
	if err != nil {
		t.Fatalf("group coordinator: %v", err)
	}
	commit := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: group, ConsumerGroupGeneration: -1, RetentionTime: -1}
	for p := range int32(2) {
		commit.AddBlock(topic, p, skipped, 0, "")
	}
	cresp, err := coord.CommitOffset(commit)
	if err != nil {
		t.Fatalf("commit offsets: %v", err)
	}
	for p := range int32(2) {
		if e := cresp.Errors[topic][p]; e != sarama.ErrNoError {
			t.Fatalf("commit offset of partition %d: %v", p, e)
		}
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
	if err != nil {
		t.Fatalf("list group offsets: %v", err)
	}
	for p := range int32(2) {
		if b := resp.GetBlock(topic, p); b == nil || b.Offset != skipped {
			t.Fatalf("committed offset of partition %d: %+v, want %d", p, b, skipped)
		}
	}

	root := t.TempDir()
	dataDir := filepath.Join(t.TempDir(), "data")
	// indexer starts the indexer on addr (empty: a port the OS picks).
	indexer := func(fill bool, addr string) *server {
		t.Helper()
		return startApplianceWith(ctx, t, root, filepath.Join(root, "*.log"), func(c *appliance.Config) {
			if addr != "" {
				c.HTTPAddr = addr
			}
			c.Role = appliance.RoleIndexer
			c.Collect = nil
			c.DataDir = dataDir
			c.Kafka = k.Brokers
			c.Topic, c.KafkaGroup, c.KafkaPartitions = topic, group, 2
			setFillGaps(t, c, fill)
		})
	}
	// answerOf polls path until check accepts its answer (at most 30 s).
	answerOf := func(srv *server, path string, check func(fleetAnswer) bool) fleetAnswer {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var a fleetAnswer
			code := srv.get(ctx, path, &a)
			if code == 200 && check(a) {
				return a
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: status %d, answer %+v after 30s", path, code, a)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	wantMissing := func(a fleetAnswer) bool {
		if !a.Partial || len(a.Missing) != 2 {
			return false
		}
		for i, m := range a.Missing {
			if m != (pipeline.MissingRange{Partition: parts[i], From: 0, To: skipped}) {
				return false
			}
		}
		return true
	}

	// The indexer reads offsets 100–199 of each partition and fills nothing.
	srv := indexer(false, "")
	srv.waitTotal(ctx, "fleettok", 2*(perPart-skipped))
	searchPath := "/api/search?limit=1&track_total=true&q=fleettok"
	answerOf(srv, searchPath, wantMissing)
	answerOf(srv, "/api/histogram?q=fleettok", wantMissing)

	shotDir := artifactsDir(t)
	tab := newTab(ctx, t)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	dialogs := watchDialogs(tab, t)
	// While the indexer restarts the page's requests are refused.
	reportPageErrors := watchPageErrors(tab, t, func(text string) bool { return !strings.Contains(text, "ERR_CONNECTION_REFUSED") })
	p := &answerPage{ctx: tab, shotDir: shotDir}
	open := func(name, u string) {
		t.Helper()
		p.do(t, name, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.ID("tab-status")))
	}
	banner := `document.getElementById('partial-banner')`
	bannerText := func() string { return p.eval(t, banner+`.textContent`) }
	// waitText polls the JavaScript string expr until it is want (the
	// status view refreshes every few seconds, the fleet's entries too).
	waitText := func(name, expr, want string) {
		t.Helper()
		if err := pollJS(tab, `(() => { try { return (`+expr+`) === `+jsString(want)+` } catch (e) { return false } })()`, 15*time.Second); err != nil {
			got, _ := chromedp.Run(tab, chromedp.Evaluate[string](`(() => { try { return String(`+expr+`) } catch (e) { return String(e) } })()`))
			t.Errorf("%s: reads %q, want %q (%v)", name, got, want, err)
		}
	}
	wantBanner := fmt.Sprintf("Partial answer: no live indexer holds %s offsets 0–%d and %s offsets 0–%d.", parts[0], skipped-1, parts[1], skipped-1)

	// Discover: the lines the indexer holds, and the banner.
	open("discover", srv.url+"/?q=fleettok")
	p.waitFor(t, "hits counted", `document.getElementById('hit-count').textContent === `+jsString(fmt.Sprintf("%d hits", 2*(perPart-skipped))))
	p.waitFor(t, "partial banner", `!`+banner+`.hidden`)
	if got := bannerText(); !strings.HasPrefix(got, wantBanner) {
		t.Errorf("banner reads %q, want it to start %q", got, wantBanner)
	}
	if got := p.eval(t, `Array.from(`+banner+`.querySelectorAll('.partial-part'), c => c.textContent).join('|')`); got != parts[0]+"|"+parts[1] {
		t.Errorf("banner names the partitions %q", got)
	}
	p.shot(t, "fleet-discover-partial")

	// Patterns and Visualize answer from the same indexer: partial too.
	open("patterns", srv.url+"/?q=fleettok&show=patterns")
	p.waitFor(t, "patterns shown", `!document.getElementById('patterns-table').hidden && !`+banner+`.hidden`)
	if got := bannerText(); !strings.HasPrefix(got, wantBanner) {
		t.Errorf("patterns: banner reads %q", got)
	}
	open("visualize", srv.url+"/?tab=visualize&q="+url.QueryEscape("fleettok | stats count() by (host)"))
	p.waitFor(t, "stats shown", `!document.getElementById('viz-table').hidden && !`+banner+`.hidden`)
	if got := bannerText(); !strings.HasPrefix(got, wantBanner) {
		t.Errorf("visualize: banner reads %q", got)
	}
	if got := p.eval(t, `document.querySelector('#viz-tbody tr').textContent`); !strings.Contains(got, fmt.Sprint(2*(perPart-skipped))) {
		t.Errorf("visualize: the count row reads %q, want %d lines", got, 2*(perPart-skipped))
	}
	p.shot(t, "fleet-visualize-partial")

	// Status: the indexer, what it holds, the partitions and what is missing.
	var st struct {
		Fleet *struct {
			Self string `json:"self"`
		} `json:"fleet"`
	}
	srv.get(ctx, "/api/status", &st)
	if st.Fleet == nil || st.Fleet.Self == "" {
		t.Fatalf("/api/status has no fleet with self: %+v", st.Fleet)
	}
	self := st.Fleet.Self
	open("status", srv.url+"/?tab=status")
	row := `document.querySelector('[data-table="indexers"] tr[data-indexer=` + jsString(self) + `]')`
	p.waitFor(t, "indexers card", row+` !== null && document.querySelector('[data-table="partitions"]') !== null`)
	cell := func(sel string) string { return row + `.querySelector(` + jsString(sel) + `).textContent` }
	waitText("indexer id", cell(".fleet-id"), self+"this process")
	waitText("group|host|assigned", cell(".fleet-group")+` + '|' + `+cell(".fleet-host")+` + '|' + `+cell(".fleet-assigned"), group+"|testbox|"+parts[0]+", "+parts[1])
	if got := p.eval(t, cell(".fleet-addr")); !strings.Contains(got, strings.TrimPrefix(srv.url, "http://")) {
		t.Errorf("address %q does not name %s", got, srv.url)
	}
	waitText("lag (every line read)", cell(".fleet-lag"), "0")
	covOf := `Array.from(` + row + `.querySelectorAll('.fleet-cov'), c => c.textContent).join('|')`
	waitText("coverage", covOf, fmt.Sprintf("%s %d–%d|%s %d–%d", parts[0], skipped, perPart-1, parts[1], skipped, perPart-1))
	partRows := `Array.from(document.querySelectorAll('[data-table="partitions"] tbody tr'), r => Array.from(r.cells, c => c.textContent).join(',')).join('|')`
	waitText("partition table", partRows, fmt.Sprintf("%s,0–%d,%s,none,0–%d|%s,0–%d,%s,none,0–%d", parts[0], perPart-1, self, skipped-1, parts[1], perPart-1, self, skipped-1))
	summary := `document.querySelector('[data-card="fleet"] .fleet-summary')`
	waitText("fleet summary|health", summary+`.dataset.fleet + '|' + `+summary+`.querySelector('strong').textContent + '|' + document.querySelector('[data-card="fleet"] .health').textContent`,
		"partial|partial: 2 ranges missing|problem")
	p.shot(t, "fleet-status-partial")
	// On a phone, in the dark: the indexers' table folds into rows.
	setMedia(t, p, 390, 844, "dark")
	noSideways(t, p, "fleet status")
	p.shot(t, "fleet-status-partial-phone-dark")
	setMedia(t, p, 1280, 900, "light")

	// With gap fill on, the indexer (started again on the same address)
	// reads offsets 0–99 from Kafka. The page, left on Discover, learns
	// from the status that the fleet is whole and offers to ask again.
	open("discover again", srv.url+"/?q=fleettok")
	p.waitFor(t, "partial banner again", `!`+banner+`.hidden && document.getElementById('partial-again') === null`)
	addr := strings.TrimPrefix(srv.url, "http://")
	srv.stop()
	srv = indexer(true, addr)
	srv.waitTotal(ctx, "fleettok", 2*perPart)
	answerOf(srv, searchPath, func(a fleetAnswer) bool { return !a.Partial && len(a.Missing) == 0 })
	if err := pollJS(tab, `document.getElementById('partial-again') !== null`, 20*time.Second); err != nil {
		t.Fatalf("no offer to ask again once the fleet is whole: %v; banner reads %q", err, bannerText())
	}
	p.shot(t, "fleet-discover-whole-again")
	p.do(t, "ask again", chromedp.Click(chromedp.ID("partial-again")))
	p.waitFor(t, "every hit", `document.getElementById('hit-count').textContent === `+jsString(fmt.Sprintf("%d hits", 2*perPart)))
	p.waitFor(t, "banner gone", banner+`.hidden`)
	if got := p.eval(t, banner+`.textContent`); got != "" {
		t.Errorf("hidden banner still reads %q", got)
	}
	p.shot(t, "fleet-discover-complete")
	srv.get(ctx, "/api/status", &st)
	if st.Fleet == nil || st.Fleet.Self == "" {
		t.Fatalf("/api/status after the restart has no fleet with self: %+v", st.Fleet)
	}
	self = st.Fleet.Self
	open("status filled", srv.url+"/?tab=status")
	waitText("fleet summary after the fill", summary+`.dataset.fleet + '|' + `+summary+`.querySelector('strong').textContent`, "complete|complete")
	waitText("partition table after the fill", partRows, fmt.Sprintf("%s,0–%d,%[3]s,%[3]s,—|%[4]s,0–%[2]d,%[3]s,%[3]s,—", parts[0], perPart-1, self, parts[1]))
	waitText("coverage after the fill", `Array.from(document.querySelectorAll('[data-table="indexers"] tr[data-indexer=`+jsString(self)+`] .fleet-cov'), c => c.textContent).join('|')`,
		fmt.Sprintf("%s 0–%d|%s 0–%d", parts[0], perPart-1, parts[1], perPart-1))
	p.shot(t, "fleet-status-complete")

	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d dialogs opened", n)
	}
	reportPageErrors()
	t.Logf("screenshots in %s", shotDir)
}

// setFillGaps sets the indexer's gap fill (--kafka-fill-gaps).
func setFillGaps(t *testing.T, c *appliance.Config, on bool) {
	t.Helper()
	c.KafkaNoFillGaps = !on
}
