package tenure_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tenure/tenure/config"
)

// goBlock is a Go code block of a Markdown file.
var goBlock = regexp.MustCompile("(?s)```go\n(.*?)```")

// TestReadmeSnippetsAreCompiled: every Go block of the README is quoted
// from a Go file of the module (an example program or an Example
// function), so `go vet` and `go test` compile what the README shows. The
// first block is a whole program, quoted from its file in full.
func TestReadmeSnippetsAreCompiled(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{} // path → lines, each trimmed
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (path == "hack" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sources[path] = normalize(string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlock.FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("the README has no Go block")
	}
	for i, m := range blocks {
		block := normalize(m[1])
		var found []string
		for path, src := range sources {
			if strings.Contains("\n"+src+"\n", "\n"+block+"\n") {
				found = append(found, path)
			}
		}
		if len(found) == 0 {
			t.Errorf("README Go block %d is in no Go file of the module; quote it from one that is compiled:\n%s", i+1, m[1])
			continue
		}
		if i == 0 && !firstIsWhole(block, sources, found) {
			t.Errorf("the README's first Go block must be a whole program file; it is part of %v", found)
		}
	}
}

// TestReadmeConfigIsTheQuickstarts: the YAML after the README's program is
// the program's tenure.yaml, which its test loads.
func TestReadmeConfigIsTheQuickstarts(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join("examples", "quickstart", "tenure.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(string(readme))
	if m == nil || m[1] != string(file) {
		t.Errorf("the README's first YAML block is not examples/quickstart/tenure.yaml")
	}
}

// TestReadmeYAMLLoads: every YAML block of the README is configuration
// that loads (with its components registered: unknown components are an
// error only against the program's list).
func TestReadmeYAMLLoads(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		if _, err := config.Load(config.YAML(fmt.Sprintf("README YAML block %d", i+1), []byte(m[1]))); err != nil {
			t.Error(err)
		}
	}
}

// normalize trims each line and drops blank lines, so that a block
// quoted from an indented function body matches.
func normalize(s string) string {
	var out []string
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

func firstIsWhole(block string, sources map[string]string, found []string) bool {
	for _, path := range found {
		if sources[path] == block {
			return true
		}
	}
	return false
}
