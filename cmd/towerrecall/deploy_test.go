package main

import (
	"errors"
	"io"
	"os"
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
