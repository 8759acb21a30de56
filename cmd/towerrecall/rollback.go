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
	now, was, err := artifact.Rollback(*modelDir)
	if err != nil {
		return err
	}
	if was == "" {
		was = "without a readable manifest"
	}
	fmt.Fprintf(stdout, "rolled back %s to version %s; the one it replaced (version %s) is now %s%s: roll back again to undo. Serving replicas load it at their next manifest poll, or at once on SIGHUP\n",
		*modelDir, now, was, *modelDir, artifact.PreviousSuffix)
	return nil
}
