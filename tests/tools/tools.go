//go:build tools

// Package tools pins the command-line tools the test suite runs for real (helm),
// so that they are built from the Go module proxy at a fixed version.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
