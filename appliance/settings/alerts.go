package settings

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/logbox/logbox/appliance/pipeline"
)

// alertRuleKeys are the keys an alert rule's JSON may have, exactly as
// written (a key in another case is refused as unknown).
var alertRuleKeys = []string{"name", "query", "every", "window", "condition", "for", "column", "new_patterns", "compare",
	"labels", "annotations", "description", "notify", "disabled", "created", "updated"}

// alertStatusKeys are the keys GET adds to a rule (its AlertStatus). A
// rule sent back with them is refused with a message that says so,
// rather than as an unknown key: above all "value", which a rule's
// threshold is not (that is condition.value).
var alertStatusKeys = []string{"state", "value", "last_eval", "last_eval_seconds", "error", "instances", "history"}

// Keys of a rule's nested objects.
var (
	alertConditionKeys = []string{"op", "value"}
	alertTargetKeys    = []string{"webhook", "alertmanager", "slack"}
)

// alertStateError is the state Status reports for a state entry it cannot
// read (the evaluator writes "error" for a rule it cannot evaluate too).
const alertStateError = "error"

// AlertStore reads and writes alert rules in etcd, and reads the state
// the evaluator keeps for each. Like SearchStore it keeps no copy: every
// call reads etcd, so an entry written there by any client (etcdctl put)
// is what the next call sees. It never writes a rule's state; Delete and
// Create remove a state entry left under the rule's name (see each). Get,
// Invalid and Put are its entries' (pipeline.ErrAlertNotFound for a
// missing name).
type AlertStore struct {
	entries[pipeline.AlertRule]
	now func() time.Time
}

// NewAlertStore returns a store over cli.
func NewAlertStore(cli *clientv3.Client) *AlertStore {
	s := &AlertStore{now: time.Now}
	s.entries = entries[pipeline.AlertRule]{
		cli: cli, prefix: pipeline.AlertsPrefix, kind: "alert rule", kinds: "alert rules",
		maxBytes: pipeline.MaxAlertBytes, notFound: pipeline.ErrAlertNotFound, exists: pipeline.ErrAlertExists,
		decode: s.Decode,
		check: func(r *pipeline.AlertRule) error {
			r.Normalize()
			return r.Validate()
		},
		fields: func(r *pipeline.AlertRule) (*string, *time.Time, *time.Time) { return &r.Name, &r.Created, &r.Updated },
		clock:  func() time.Time { return s.now() },
	}
	return s
}

// Decode parses and validates an alert rule as the API and etcd hold it:
// one JSON object of at most pipeline.MaxAlertBytes, each key once and
// one of alertRuleKeys (condition's one of op and value, a notify
// target's one of webhook, alertmanager and slack), each value of its
// type, nothing after it. A refused rule is a *pipeline.FieldError naming
// the key ("notify[1].webhook", "labels.team"). Defaults are filled in
// (AlertRule.Normalize). The query is checked for size only: its syntax
// is the index's to check (httpapi does it before it stores a rule).
func (s *AlertStore) Decode(b []byte) (pipeline.AlertRule, error) {
	var r pipeline.AlertRule
	if err := checkJSONObject(b, "alert rule", ""); err != nil {
		return r, err
	}
	top, err := jsonObject("", b, alertRuleKeys, "an alert rule")
	if err != nil {
		return r, err
	}
	var cond, notify, labels, annotations, created, updated json.RawMessage
	for _, f := range []struct {
		key string
		dst any
	}{
		{"name", &r.Name}, {"query", &r.Query}, {"every", &r.Every}, {"window", &r.Window},
		{"condition", &cond}, {"for", &r.For}, {"column", &r.Column}, {"new_patterns", &r.NewPatterns},
		{"compare", &r.Compare}, {"labels", &labels}, {"annotations", &annotations},
		{"description", &r.Description}, {"notify", &notify}, {"disabled", &r.Disabled},
		{"created", &created}, {"updated", &updated},
	} {
		if err := decodeField(f.key, top[f.key], f.dst); err != nil {
			return r, err
		}
	}
	if !isNull(cond) { // else the default, > 0
		c, err := jsonObject("condition", cond, alertConditionKeys, "a condition")
		if err == nil {
			err = decodeField("condition.op", c["op"], &r.Condition.Op)
		}
		if err == nil {
			err = decodeField("condition.value", c["value"], &r.Condition.Value)
		}
		if err != nil {
			return r, err
		}
	}
	if r.Notify, err = decodeTargets(notify); err != nil {
		return r, err
	}
	if r.Labels, err = decodeStringMap("labels", labels); err != nil {
		return r, err
	}
	if r.Annotations, err = decodeStringMap("annotations", annotations); err != nil {
		return r, err
	}
	if err := decodeTimes(created, updated, &r.Created, &r.Updated); err != nil {
		return r, err
	}
	return r, s.finishDecode(&r, len(b))
}

// jsonObject reads raw, the value at path (the top object when path is
// ""), as an object whose keys are among keys; what names it in errors
// ("a condition"). Duplicates were refused by checkJSONObject already.
func jsonObject(path string, raw json.RawMessage, keys []string, what string) (map[string]json.RawMessage, error) {
	field := path
	if field == "" {
		field = "body"
	}
	var m map[string]json.RawMessage
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, &pipeline.FieldError{Field: field, Msg: fmt.Sprintf("a JSON %s where %s (an object) is wanted", jsonValueKind(t), what)}
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, &pipeline.FieldError{Field: field, Msg: "invalid JSON: " + err.Error()}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch {
		case slices.Contains(keys, k):
		case path == "" && slices.Contains(alertStatusKeys, k):
			msg := "is the rule's state, which the server reports; leave it out of a rule"
			if k == "value" {
				msg += " (the threshold is condition.value)"
			}
			return nil, &pipeline.FieldError{Field: k, Msg: msg}
		default:
			return nil, &pipeline.FieldError{Field: joinPath(path, k), Msg: fmt.Sprintf("unknown key; %s has %s", what, strings.Join(keys, ", "))}
		}
	}
	return m, nil
}

// jsonValueKind names the kind of the JSON value that starts t.
func jsonValueKind(t []byte) string {
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "string"
	case '[':
		return "array"
	case '{':
		return "object"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// decodeField decodes raw, the value of field, into dst; a value of the
// wrong type is a FieldError naming field. An absent or null value leaves
// dst as it is.
func decodeField(field string, raw json.RawMessage, dst any) error {
	if isNull(raw) {
		return nil
	}
	err := json.Unmarshal(raw, dst)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if strings.HasPrefix(te.Value, "number ") {
			// A number too large for its field (1e400).
			return &pipeline.FieldError{Field: field, Msg: fmt.Sprintf("%s is out of range", strings.TrimPrefix(te.Value, "number "))}
		}
		return &pipeline.FieldError{Field: field, Msg: fmt.Sprintf("a JSON %s where %s is wanted", te.Value, jsonKind(te.Type.Kind().String()))}
	}
	return &pipeline.FieldError{Field: field, Msg: "invalid JSON: " + err.Error()}
}

// decodeTargets reads a rule's notify array, each target an object with
// one of alertTargetKeys.
func decodeTargets(raw json.RawMessage) ([]pipeline.AlertTarget, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := decodeField("notify", raw, &items); err != nil {
		return nil, err
	}
	out := make([]pipeline.AlertTarget, len(items))
	for i, it := range items {
		f := fmt.Sprintf("notify[%d]", i)
		m, err := jsonObject(f, it, alertTargetKeys, "a notify target")
		if err != nil {
			return nil, err
		}
		for _, d := range []struct {
			key string
			dst *string
		}{{"webhook", &out[i].Webhook}, {"alertmanager", &out[i].Alertmanager}, {"slack", &out[i].Slack}} {
			if err := decodeField(f+"."+d.key, m[d.key], d.dst); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// decodeStringMap reads an object of strings (labels, annotations),
// naming a value of another type by its key.
func decodeStringMap(field string, raw json.RawMessage) (map[string]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := decodeField(field, raw, &m); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		var v string
		if err := decodeField(field+"."+k, m[k], &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// DecodeEntry decodes a rule stored at key (as a watch of
// pipeline.AlertsPrefix sees it) and checks that its name is its key's.
func (s *AlertStore) DecodeEntry(key string, b []byte) (pipeline.AlertRule, error) {
	return s.decodeEntry(key, b)
}

// List returns the valid rules sorted by name, and why each invalid entry
// under pipeline.AlertsPrefix was refused, by the name in its key.
func (s *AlertStore) List(ctx context.Context) (pipeline.AlertRuleList, error) {
	valid, invalid, err := s.list(ctx)
	if err != nil {
		return pipeline.AlertRuleList{}, err
	}
	return pipeline.AlertRuleList{Alerts: valid, Invalid: invalid}, nil
}

// Create stores a new rule, created and updated now, and removes any
// state entry left under its name (by a rule deleted with etcdctl, which
// left it), in one transaction: the new rule starts never evaluated. It
// fails with pipeline.ErrAlertExists if the name is taken, and returns
// what it stored.
func (s *AlertStore) Create(ctx context.Context, r pipeline.AlertRule) (pipeline.AlertRule, error) {
	return s.create(ctx, r, clientv3.OpDelete(pipeline.AlertStatePrefix+r.Name))
}

// Delete removes a rule, valid or not, and its state entry, in one etcd
// transaction; it fails with pipeline.ErrAlertNotFound (and removes
// nothing) if there is no rule of that name.
func (s *AlertStore) Delete(ctx context.Context, name string) error {
	return s.delete(ctx, name, clientv3.OpDelete(pipeline.AlertStatePrefix+name))
}

// Status returns the state the evaluator last wrote for the rule name,
// and false if there is none (the rule was never evaluated). A state
// entry that is not AlertStatus JSON is answered as the state "error"
// saying so (the evaluator replaces it at its next evaluation). Instances
// and History are never nil.
func (s *AlertStore) Status(ctx context.Context, name string) (pipeline.AlertStatus, bool, error) {
	key := pipeline.AlertStatePrefix + name
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return pipeline.AlertStatus{}, false, fmt.Errorf("get the state of alert rule %q: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return pipeline.AlertStatus{}, false, nil
	}
	return decodeAlertStatus(key, resp.Kvs[0].Value), true, nil
}

// Statuses returns every state entry, by rule name (see Status); a rule
// that is not in the map was never evaluated.
func (s *AlertStore) Statuses(ctx context.Context) (map[string]pipeline.AlertStatus, error) {
	resp, err := s.cli.Get(ctx, pipeline.AlertStatePrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list alert states: %w", err)
	}
	out := make(map[string]pipeline.AlertStatus, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), pipeline.AlertStatePrefix)] = decodeAlertStatus(string(kv.Key), kv.Value)
	}
	return out, nil
}

// decodeAlertStatus reads a state entry. It is the evaluator's, so it is
// read leniently (a key a newer evaluator adds is no error).
func decodeAlertStatus(key string, b []byte) pipeline.AlertStatus {
	var st pipeline.AlertStatus
	if err := json.Unmarshal(b, &st); err != nil {
		st = pipeline.AlertStatus{State: alertStateError, Error: fmt.Sprintf("the state entry at %s is unreadable (%v); the evaluator rewrites it at the rule's next evaluation", key, err)}
	}
	if st.Instances == nil {
		st.Instances = []pipeline.AlertInstance{}
	}
	if st.History == nil {
		st.History = []pipeline.AlertEvent{}
	}
	return st
}
