package esbulk

import (
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
)

// The answers to the requests clients make before they send: enough of
// Elasticsearch's for them to go on, nothing logbox would have to keep.

const (
	clusterName = "logbox"
	clusterUUID = "bG9nYm94LWNsdXN0ZXIw" // fixed: logbox is one cluster to its clients
	nodeID      = "bG9nYm94LW5vZGUtMDAw"
	buildHash   = "logbox"
	buildDate   = "2023-11-04T10:04:57.184859352Z"
	// licenseUID is the basic license's uid; the dates are 2024-01-01.
	licenseUID    = "6c6f6762-6f78-4261-7369-636c6963656e"
	licenseIssued = int64(1704067200000)
)

// compat is the oldest wire and index versions an Elasticsearch of the
// given major version reports.
func compat(version string) (wire, index string) {
	m := versionRE.FindStringSubmatch(version)
	major, _ := strconv.Atoi(m[1])
	switch {
	case major == 8:
		return "7.17.0", "7.0.0"
	case major == 7:
		return "6.8.0", "6.0.0-beta1"
	case major > 8:
		return strconv.Itoa(major-1) + ".0.0", strconv.Itoa(major-1) + ".0.0"
	}
	return version, version
}

// info answers GET / and HEAD /: what every client asks first (the
// version; the Go client also checks the product header).
func (h *Handler) info(w http.ResponseWriter, r *http.Request) {
	wire, index := compat(h.cfg.Version)
	writeJSON(w, http.StatusOK, map[string]any{
		"name":         "logbox",
		"cluster_name": clusterName,
		"cluster_uuid": clusterUUID,
		"version": map[string]any{
			"number":                              h.cfg.Version,
			"build_flavor":                        "default",
			"build_type":                          "tar",
			"build_hash":                          buildHash,
			"build_date":                          buildDate,
			"build_snapshot":                      false,
			"lucene_version":                      "9.8.0",
			"minimum_wire_compatibility_version":  wire,
			"minimum_index_compatibility_version": index,
		},
		"tagline": "You Know, for Search",
	})
}

func licenseBody() map[string]any {
	return map[string]any{
		"status":               "active",
		"uid":                  licenseUID,
		"type":                 "basic",
		"mode":                 "basic",
		"issue_date":           "2024-01-01T00:00:00.000Z",
		"issue_date_in_millis": licenseIssued,
		"max_nodes":            1000,
		"max_resource_units":   nil,
		"issued_to":            clusterName,
		"issuer":               "elasticsearch",
		"start_date_in_millis": -1,
	}
}

// license answers GET /_license: basic and active (Beats and Logstash
// read it to decide which features to use).
func (h *Handler) license(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"license": licenseBody()})
}

// xpack answers GET /_xpack: ILM available (Beats 7 check it before they
// set up a policy), security off.
func (h *Handler) xpack(w http.ResponseWriter, r *http.Request) {
	feature := func(on bool) map[string]bool { return map[string]bool{"available": on, "enabled": on} }
	writeJSON(w, http.StatusOK, map[string]any{
		"build":   map[string]string{"hash": buildHash, "date": buildDate},
		"license": map[string]any{"uid": licenseUID, "type": "basic", "mode": "basic", "status": "active"},
		"features": map[string]any{
			"ilm":        feature(true),
			"monitoring": feature(false),
			"security":   map[string]bool{"available": true, "enabled": false},
			"ml":         feature(false),
			"watcher":    feature(false),
		},
		"tagline": "You know, for X",
	})
}

// health answers GET /_cluster/health (Vector's health check).
func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"cluster_name": clusterName, "status": "green", "timed_out": false,
		"number_of_nodes": 1, "number_of_data_nodes": 1,
		"active_primary_shards": 0, "active_shards": 0, "relocating_shards": 0, "initializing_shards": 0,
		"unassigned_shards": 0, "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
		"number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
		"active_shards_percent_as_number": 100.0,
	})
}

// nodes answers GET /_nodes: one node, published at the address the
// client used. A client that sniffs connects there without the /es
// prefix, where the bulk routes are mounted too.
func (h *Handler) nodes(w http.ResponseWriter, r *http.Request) {
	addr := r.Host
	host := addr
	if name, _, err := net.SplitHostPort(addr); err == nil {
		host = name
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"_nodes":       map[string]int{"total": 1, "successful": 1, "failed": 0},
		"cluster_name": clusterName,
		"nodes": map[string]any{nodeID: map[string]any{
			"name": "logbox", "transport_address": addr, "host": host, "version": h.cfg.Version,
			"build_flavor": "default", "build_type": "tar", "build_hash": buildHash,
			"roles": []string{"data", "ingest", "master"},
			"http": map[string]any{
				"bound_address": []string{addr}, "publish_address": addr,
				"max_content_length_in_bytes": h.cfg.MaxBody,
			},
		}},
	})
}

// setupGet answers GET of a set-up object of kind with one that exists
// and is empty: Beats and Logstash then leave it as it is.
func (h *Handler) setupGet(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "name")
		var body any
		switch kind {
		case "_index_template":
			body = map[string]any{"index_templates": []any{map[string]any{"name": name, "index_template": map[string]any{
				"index_patterns": []string{name + "*"}, "template": map[string]any{}, "composed_of": []string{}}}}}
		case "_component_template":
			body = map[string]any{"component_templates": []any{map[string]any{"name": name, "component_template": map[string]any{
				"template": map[string]any{}}}}}
		case "_template":
			body = map[string]any{name: map[string]any{"order": 0, "index_patterns": []string{name + "*"},
				"settings": map[string]any{}, "mappings": map[string]any{}, "aliases": map[string]any{}}}
		case "_ilm/policy":
			body = map[string]any{name: map[string]any{"version": 1, "modified_date": "2024-01-01T00:00:00.000Z",
				"policy": map[string]any{"phases": map[string]any{"hot": map[string]any{"min_age": "0ms", "actions": map[string]any{}}}}}}
		case "_ingest/pipeline":
			body = map[string]any{name: map[string]any{"description": "logbox ignores ingest pipelines", "processors": []any{}}}
		case "_data_stream":
			body = map[string]any{"data_streams": []any{map[string]any{"name": name,
				"timestamp_field": map[string]string{"name": "@timestamp"}, "indices": []any{}, "generation": 1,
				"status": "GREEN", "template": name, "hidden": false, "system": false}}}
		case "_alias":
			body = map[string]any{name: map[string]any{"aliases": map[string]any{name: map[string]any{}}}}
		default:
			panic(fmt.Sprintf("esbulk: no set-up answer for %s", kind))
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// exists answers HEAD of a set-up object or index: it exists.
func exists(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// acknowledged answers a PUT of a set-up object: stored (logbox keeps
// nothing of it).
func acknowledged(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"acknowledged": true})
}

// createIndex answers PUT /{index}.
func (h *Handler) createIndex(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": chi.URLParam(r, "index")})
}

// refresh answers a refresh: a line is searchable once acknowledged.
func (h *Handler) refresh(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
}

// unsupported answers every other request as Elasticsearch answers an
// unknown one, naming what logbox does answer.
func unsupported(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusBadRequest, typeIllegalArgument,
		fmt.Sprintf("no handler found for uri [%s] and method [%s]: logbox answers the bulk API only (search with /api/search)", r.URL.Path, r.Method))
}
