package main

import (
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// manifests reads the Kubernetes objects of a multi-document YAML file.
func manifests(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var objs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var o map[string]any
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
}

// TestDeploymentLeavesReplicasToHPA: a Deployment an HPA scales has no
// spec.replicas. With one, every `kubectl apply -f deployment.yaml` (an
// image bump) set the replica count back to it, scaling a busy service
// down until the HPA caught up (the Kubernetes HPA docs' advice).
func TestDeploymentLeavesReplicasToHPA(t *testing.T) {
	t.Parallel()
	objs := manifests(t, "../../deploy/kubernetes/deployment.yaml")
	scaled := map[string]bool{}
	for _, o := range objs {
		if o["kind"] == "HorizontalPodAutoscaler" {
			ref, _ := o["spec"].(map[string]any)["scaleTargetRef"].(map[string]any)
			if ref["kind"] == "Deployment" {
				scaled[ref["name"].(string)] = true
			}
		}
	}
	if len(scaled) == 0 {
		t.Fatal("no HPA scales a Deployment in deployment.yaml")
	}
	for _, o := range objs {
		if o["kind"] != "Deployment" {
			continue
		}
		name := o["metadata"].(map[string]any)["name"].(string)
		if _, ok := o["spec"].(map[string]any)["replicas"]; ok && scaled[name] {
			t.Errorf("Deployment %s sets spec.replicas, though an HPA scales it", name)
		}
	}
}

// TestNetworkPolicy: the policy in deployment.yaml selects exactly the
// serving pods, lets in only their HTTP port and lets nothing out, and does
// not select the training Job's pods, whose init container downloads
// MovieLens.
func TestNetworkPolicy(t *testing.T) {
	t.Parallel()
	get := func(o any, path ...string) any {
		for _, p := range path {
			m, _ := o.(map[string]any)
			o = m[p]
		}
		return o
	}
	matches := func(selector, labels any) bool {
		sel, _ := selector.(map[string]any)
		lab, _ := labels.(map[string]any)
		if len(sel) == 0 {
			return true // an empty selector selects every pod
		}
		for k, v := range sel {
			if lab[k] != v {
				return false
			}
		}
		return true
	}
	var policy, deployment map[string]any
	for _, o := range manifests(t, "../../deploy/kubernetes/deployment.yaml") {
		switch o["kind"] {
		case "NetworkPolicy":
			policy = o
		case "Deployment":
			deployment = o
		}
	}
	if policy == nil || deployment == nil {
		t.Fatalf("deployment.yaml: NetworkPolicy %v, Deployment %v; want both", policy != nil, deployment != nil)
	}
	selector := get(policy, "spec", "podSelector", "matchLabels")
	if !matches(selector, get(deployment, "spec", "template", "metadata", "labels")) {
		t.Errorf("the NetworkPolicy's podSelector %v does not select the serving pods", selector)
	}
	for _, o := range manifests(t, "../../deploy/kubernetes/train-job.yaml") {
		if o["kind"] == "Job" && matches(selector, get(o, "spec", "template", "metadata", "labels")) {
			t.Errorf("the NetworkPolicy selects the training Job's pods: its download would be blocked")
		}
	}
	types, _ := get(policy, "spec", "policyTypes").([]any)
	if len(types) != 2 || !slices.Contains(types, any("Ingress")) || !slices.Contains(types, any("Egress")) {
		t.Errorf("policyTypes %v, want Ingress and Egress", types)
	}
	if egress, ok := get(policy, "spec", "egress").([]any); !ok || len(egress) != 0 {
		t.Errorf("egress %v, want [] (nothing out)", get(policy, "spec", "egress"))
	}
	ingress, _ := get(policy, "spec", "ingress").([]any)
	if len(ingress) != 1 {
		t.Fatalf("%d ingress rules, want 1", len(ingress))
	}
	ports, _ := get(ingress[0], "ports").([]any)
	containers, _ := get(deployment, "spec", "template", "spec", "containers").([]any)
	var named []any
	for _, c := range containers {
		for _, p := range get(c, "ports").([]any) {
			named = append(named, get(p, "name"))
		}
	}
	if len(ports) != 1 || !slices.Contains(named, get(ports[0], "port")) || get(ports[0], "protocol") != "TCP" {
		t.Errorf("ingress ports %v, want the container's TCP port by name (one of %v)", ports, named)
	}
}

// checkAlertMetrics checks deploy/prometheus/alerts.yaml against a live
// service's /metrics text: every towerrecall_ series an alert reads exists,
// and each label an alert matches on is one the series has (with the value,
// for an equality matcher). promtool's unit tests (make alerts) check the
// rules' logic on made-up series; this checks the names they are made up
// from. The service needs catalogue changes on, or catalog_writable has no
// series.
func checkAlertMetrics(t *testing.T, metrics string) {
	t.Helper()
	raw, err := os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	selector := regexp.MustCompile(`(towerrecall_\w+)(\{([^}]*)\})?`)
	matcher := regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	lines := strings.Split(metrics, "\n")
	rules := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			rules++
			sels := selector.FindAllStringSubmatch(r.Expr, -1)
			if len(sels) == 0 {
				t.Errorf("alert %s reads no towerrecall_ series: %s", r.Alert, r.Expr)
			}
			for _, s := range sels {
				var series []string
				for _, l := range lines {
					if strings.HasPrefix(l, s[1]+"{") || strings.HasPrefix(l, s[1]+" ") {
						series = append(series, l)
					}
				}
				if len(series) == 0 {
					t.Errorf("alert %s reads %s, which /metrics does not export", r.Alert, s[1])
					continue
				}
				for _, m := range matcher.FindAllStringSubmatch(s[3], -1) {
					want := m[1] + `="`
					if m[2] == "=" {
						want += m[3] + `"`
					}
					if !slices.ContainsFunc(series, func(l string) bool { return strings.Contains(l, want) }) {
						t.Errorf("alert %s matches %s on %s%s%q; no such series in /metrics (%d others, e.g. %s)", r.Alert, s[1], m[1], m[2], m[3], len(series), series[0])
					}
				}
			}
		}
	}
	if rules == 0 {
		t.Error("alerts.yaml has no rules")
	}
}

// checkDocumentedMetrics checks docs/configuration.md's list of metrics
// against a live service's /metrics text (catalogue changes on, requests
// served): every towerrecall_ family served is listed, and every one
// listed is served.
func checkDocumentedMetrics(t *testing.T, metrics string) {
	t.Helper()
	section := docSection(t, "configuration.md", "## Metrics")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z]+_[a-z_]+)(\\{[a-z_,]*\\})?`").FindAllStringSubmatch(section, -1) {
		documented["towerrecall_"+m[1]] = true
	}
	served := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (towerrecall_\w+) `).FindAllStringSubmatch(metrics, -1) {
		served[m[1]] = true
	}
	if len(served) == 0 {
		t.Fatal("/metrics serves no towerrecall_ family")
	}
	for name := range served {
		if !documented[name] {
			t.Errorf("/metrics serves %s; docs/configuration.md's Metrics section does not list it", name)
		}
	}
	for name := range documented {
		if !served[name] {
			t.Errorf("docs/configuration.md lists %s; /metrics does not serve it", name)
		}
	}
}

// TestPDBEvictsUnreadyReplicas: the PodDisruptionBudget lets a node drain
// evict replicas that are not ready. Replicas are unready for long on
// purpose (an empty model volume, an artifact refused at start: /readyz
// 503 until a good one is published); under the default policy
// (IfHealthyBudget) a budget with no healthy pod refuses every eviction,
// so `kubectl drain` of their nodes (a cluster upgrade) waits for ever
// for pods that serve nothing.
func TestPDBEvictsUnreadyReplicas(t *testing.T) {
	t.Parallel()
	n := 0
	for _, o := range manifests(t, "../../deploy/kubernetes/deployment.yaml") {
		if o["kind"] != "PodDisruptionBudget" {
			continue
		}
		n++
		spec, _ := o["spec"].(map[string]any)
		if got := spec["unhealthyPodEvictionPolicy"]; got != "AlwaysAllow" {
			t.Errorf("PodDisruptionBudget %v: spec.unhealthyPodEvictionPolicy %v, want AlwaysAllow", o["metadata"], got)
		}
	}
	if n == 0 {
		t.Fatal("deployment.yaml has no PodDisruptionBudget")
	}
}
