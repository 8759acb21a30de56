package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/towerrecall/towerrecall/internal/artifact"
)

// runRollback puts back the artifact that the last train or prior replaced
// (kept beside the model directory), for a model that turned out worse than
// the one before it; a second rollback undoes the first. Serving replicas
// load it at their next manifest poll, or at once on SIGHUP.
func runRollback(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rollback", flag.ContinueOnError)
	modelDir := fs.String("model", "var/model", "artifact directory to roll back")
	if err := parseFlags(fs, "towerrecall rollback [--model var/model]", args, stdout, stderr); err != nil {
		return err
	}
	r, err := artifact.Rollback(*modelDir)
	if err != nil {
		return err
	}
	switch replaced := "version " + r.Replaced; {
	case !r.Swapped:
		fmt.Fprintf(stdout, "%s held no artifact: put the previous one, version %s, there; there is nothing to undo\n", r.Dir, r.Version)
	default:
		if r.Replaced == "" {
			replaced = "an artifact whose manifest does not read"
		}
		fmt.Fprintf(stdout, "rolled back %s to version %s; the one it replaced (%s) is now %s: roll back again to undo\n", r.Dir, r.Version, replaced, r.Previous)
	}
	fmt.Fprintln(stdout, "serving replicas load it at their next manifest poll, or at once on SIGHUP")
	return nil
}
