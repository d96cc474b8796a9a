package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logbox/logbox/appliance/pipeline"
)

// notification is one message to one target, as the outbox keeps it in
// etcd: what to say, not yet how (the payload is rendered when it is
// sent, so an Alertmanager's endsAt counts from the send).
type notification struct {
	Rule    string               `json:"rule"`
	Target  pipeline.AlertTarget `json:"target"`
	Status  string               `json:"status"` // firing or resolved
	Created time.Time            `json:"created"`
	// Resend is how often firing alerts are sent to an Alertmanager
	// again; their endsAt is four times that after the send.
	Resend    time.Duration `json:"resend"`
	Alerts    []alert       `json:"alerts"`
	Truncated int           `json:"truncated,omitempty"`
}

// alert is one instance in a notification.
type alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"starts_at"`
	EndsAt       time.Time         `json:"ends_at,omitzero"` // zero while firing
	GeneratorURL string            `json:"generator_url"`
	Value        float64           `json:"value"`
}

// formatValue writes a value as people read it: 12, 0.31, 1e+21.
func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// alertOf is the alert for an instance of r that turned firing or
// resolved at now.
func alertOf(r *pipeline.AlertRule, in pipeline.AlertInstance, now time.Time, external string) alert {
	_, window, _, _ := r.Durations()
	ann := make(map[string]string, len(r.Annotations)+3)
	maps.Copy(ann, r.Annotations)
	if r.Description != "" {
		ann["description"] = r.Description
	}
	ann["value"] = formatValue(in.Value)
	ann["query"] = r.Query
	a := alert{Labels: in.Labels, Annotations: ann, StartsAt: in.FiredAt, Value: in.Value}
	from := now.Add(-window)
	if in.State == pipeline.AlertResolved {
		a.EndsAt = now
		// From before the instance began to hold, to its end.
		from = in.ActiveSince.Add(-window)
	}
	search := in.Search
	if search == "" {
		search = instanceSearch(r.Query, nil)
	}
	a.GeneratorURL = pageLink(external, search, from, now)
	return a
}

// fingerprint is a label set's 16 hex digits, as Alertmanager writes them.
func fingerprint(labels map[string]string) string {
	h := fnv.New64a()
	h.Write([]byte(pipeline.LabelKey(labels)))
	return fmt.Sprintf("%016x", h.Sum64())
}

// webhookMessage is Alertmanager's webhook JSON, version 4.
type webhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []webhookAlert    `json:"alerts"`
}

type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // 0001-01-01T00:00:00Z while firing
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// postableAlert is one alert of Alertmanager's POST /api/v2/alerts.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

// common is what every map of ms has alike.
func common(ms []map[string]string) map[string]string {
	out := map[string]string{}
	if len(ms) == 0 {
		return out
	}
	maps.Copy(out, ms[0])
	for _, m := range ms[1:] {
		for k, v := range out {
			if w, ok := m[k]; !ok || w != v {
				delete(out, k)
			}
		}
	}
	return out
}

// render is the request that delivers n at now: its URL and body.
func render(n *notification, now time.Time, external string) (string, []byte, error) {
	var body any
	target := n.Target.URL()
	switch n.Target.Kind() {
	case "webhook":
		m := webhookMessage{
			Version: "4", GroupKey: fmt.Sprintf("{}:{alertname=%q}", n.Rule), TruncatedAlerts: n.Truncated,
			Status: n.Status, Receiver: "logbox", GroupLabels: map[string]string{"alertname": n.Rule},
			ExternalURL: external, Alerts: []webhookAlert{},
		}
		var ls, as []map[string]string
		for _, a := range n.Alerts {
			status := pipeline.AlertFiring
			if !a.EndsAt.IsZero() {
				status = pipeline.AlertResolved
			}
			m.Alerts = append(m.Alerts, webhookAlert{status, a.Labels, a.Annotations, a.StartsAt.UTC(), a.EndsAt.UTC(), a.GeneratorURL, fingerprint(a.Labels)})
			ls, as = append(ls, a.Labels), append(as, a.Annotations)
		}
		m.CommonLabels, m.CommonAnnotations = common(ls), common(as)
		body = m
	case "alertmanager":
		u, err := url.Parse(target)
		if err != nil {
			return "", nil, fmt.Errorf("alertmanager URL: %w", err)
		}
		u.Path = strings.TrimRight(u.Path, "/") + "/api/v2/alerts"
		target = u.String()
		as := make([]postableAlert, 0, len(n.Alerts))
		for _, a := range n.Alerts {
			end := a.EndsAt
			if end.IsZero() {
				// Alertmanager ends an alert it has not heard of again by
				// endsAt; firing alerts are sent every Resend, so four
				// missed sends pass before it does (as Prometheus does).
				end = now.Add(4 * n.Resend)
			}
			as = append(as, postableAlert{a.Labels, a.Annotations, a.StartsAt.UTC(), end.UTC(), a.GeneratorURL})
		}
		body = as
	case "slack":
		var lines []string
		for _, a := range n.Alerts {
			state := "FIRING"
			if !a.EndsAt.IsZero() {
				state = "RESOLVED"
			}
			var ls []string
			for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
				if k != "alertname" {
					ls = append(ls, k+"="+a.Labels[k])
				}
			}
			parts := []string{"[" + state + "] " + n.Rule}
			if len(ls) > 0 {
				parts = append(parts, strings.Join(ls, ", "))
			}
			parts = append(parts, "value "+formatValue(a.Value), a.GeneratorURL)
			lines = append(lines, strings.Join(parts, " — "))
		}
		if n.Truncated > 0 {
			lines = append(lines, fmt.Sprintf("… and %d more", n.Truncated))
		}
		body = map[string]string{"text": strings.Join(lines, "\n")}
	default:
		return "", nil, fmt.Errorf("a target without webhook, alertmanager or slack")
	}
	b, err := json.Marshal(body)
	return target, b, err
}

// permanentError is a delivery the target refused for good (a 4xx other
// than 408 and 429): sending the same again would be refused again.
type permanentError struct{ error }

// send delivers n once. An error is a *permanentError when retrying is
// pointless; a message never holds the target's path or query (where
// tokens live), only its scheme and host.
func (e *Evaluator) send(ctx context.Context, n *notification) error {
	target, body, err := render(n, e.cfg.Now(), e.cfg.ExternalURL)
	if err != nil {
		return &permanentError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return &permanentError{fmt.Errorf("request to %s: %w", redact(target), unwrapURLError(err))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "logbox-alerting")
	resp, err := e.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("post to %s: %w", redact(target), unwrapURLError(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("post to %s: %s: %s", redact(target), resp.Status, strings.TrimSpace(string(msg)))
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return &permanentError{err}
	}
	return err
}

// unwrapURLError drops the *url.Error around err, which would repeat the
// whole URL (a Slack webhook's path is its secret).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact keeps a URL's scheme and host.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}
