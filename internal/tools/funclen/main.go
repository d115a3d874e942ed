// Command funclen lists the ten longest functions (in lines) of the Go code under the given
// directories, leaving out tests and generated code. From the repository root:
//
//	(cd internal/tools && go run ./funclen ../..)
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type fn struct {
	name string
	n    int
}

func main() {
	var fns []fn
	fset := token.NewFileSet()
	for _, root := range os.Args[1:] {
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			if strings.Contains(p, "generated") || strings.Contains(p, "/.tools/") {
				return nil
			}
			f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
			if err != nil {
				return nil
			}
			for _, c := range f.Comments {
				if strings.Contains(c.Text(), "Code generated") {
					return nil
				}
			}
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				name := fd.Name.Name
				if fd.Recv != nil && len(fd.Recv.List) > 0 {
					t := fd.Recv.List[0].Type
					if s, ok := t.(*ast.StarExpr); ok {
						t = s.X
					}
					if id, ok := t.(*ast.Ident); ok {
						name = id.Name + "." + name
					}
				}
				n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
				fns = append(fns, fn{p + ":" + name, n})
			}
			return nil
		})
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].n > fns[j].n })
	for i := 0; i < 10 && i < len(fns); i++ {
		fmt.Printf("%4d %s\n", fns[i].n, fns[i].name)
	}
}
