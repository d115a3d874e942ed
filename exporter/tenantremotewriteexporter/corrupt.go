package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.opentelemetry.io/collector/component"
)

// Torn and damaged queue files.
//
// file_storage keeps each queue in a bbolt file, and bbolt trusts its file: a file torn by a power
// cut (or truncated, or with flipped bytes) makes bbolt panic while opening it, in a goroutine of
// its own (the scan for free pages), where no recover can reach. The collector then crashes at
// every start. So before the storage extension opens a queue file, we check it: opened read-only
// (no free-page scan), every page the metadata claims must lie inside the file, and every key is
// walked here, where bbolt's page assertions (and memory faults) are recovered; then bbolt's own
// consistency check. A file that fails is moved aside and the queue starts empty.

// fileStoragePkg is the package of the contrib file_storage extension, whose directory we read.
const fileStoragePkg = "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"

// storageDirectory returns the directory of a file_storage extension, "" for another extension.
// file_storage does not publish it: it is read from the extension's config (field cfg.Directory),
// which TestStorageDirectory pins for the collector version in go.mod.
func storageDirectory(ext component.Component) string {
	v := reflect.ValueOf(ext)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct || v.Type().PkgPath() != fileStoragePkg {
		return ""
	}
	cfg := v.FieldByName("cfg")
	for cfg.IsValid() && cfg.Kind() == reflect.Pointer && !cfg.IsNil() {
		cfg = cfg.Elem()
	}
	if !cfg.IsValid() || cfg.Kind() != reflect.Struct {
		return ""
	}
	dir := cfg.FieldByName("Directory")
	if !dir.IsValid() || dir.Kind() != reflect.String {
		return ""
	}
	return dir.String()
}

// storageFileName is the file file_storage gives a client (its sanitize, and the hash it falls
// back to when the name is too long for the file system).
func storageFileName(kind component.Kind, id component.ID, name string) string {
	raw := fmt.Sprintf("%s_%s_%s", strings.ToLower(kind.String()), id.Type(), id.Name())
	if name != "" {
		raw += "_" + name
	}
	var b strings.Builder
	for _, r := range raw {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "~%04X", r)
		}
	}
	if b.Len() > 255 { // NAME_MAX
		sum := sha256.Sum256([]byte(b.String()))
		return hex.EncodeToString(sum[:])
	}
	return b.String()
}

// errCorrupt marks a queue file that cannot be used.
var errCorrupt = errors.New("corrupt queue file")

// verifyQueueFile checks a storage file before it is opened for writing. It returns an error
// wrapping errCorrupt when the file is torn or damaged, and then the data points its queue held
// by its own record (-1 when that is unreadable too). A missing or empty file, one another
// process holds open, or one we may not read is not ours to judge (nil).
func verifyQueueFile(path string) (lost int64, err error) {
	lost = -1
	fi, statErr := os.Stat(path)
	if statErr != nil || fi.Size() == 0 {
		return lost, nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errCorrupt, r)
		}
	}()
	db, openErr := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if openErr != nil {
		var pathErr *fs.PathError
		if errors.Is(openErr, berrors.ErrTimeout) || errors.As(openErr, &pathErr) {
			return lost, nil
		}
		return lost, fmt.Errorf("%w: %w", errCorrupt, openErr)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("%w: %d bytes, its pages need %d (torn or truncated)", errCorrupt, fi.Size(), tx.Size())
		}
		if b := tx.Bucket([]byte("default")); b != nil {
			if m, ok := parseQueueMeta(b.Get([]byte(queueMetadataKey))); ok && !m.unknown {
				lost = m.itemsSize
			}
		}
		if err := tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { return walkBucket(b) }); err != nil {
			return err
		}
		for cerr := range tx.Check() {
			if err == nil {
				err = fmt.Errorf("%w: %w", errCorrupt, cerr)
			}
		}
		return err
	})
	return lost, err
}

// walkBucket reads every key and value of a bucket and its nested buckets, checking key order.
func walkBucket(b *bbolt.Bucket) error {
	var prev []byte
	return b.ForEach(func(k, v []byte) error {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("%w: keys out of order", errCorrupt)
		}
		prev = append(prev[:0], k...)
		if v == nil {
			if nested := b.Bucket(k); nested != nil {
				return walkBucket(nested)
			}
		}
		return nil
	})
}

// moveAside renames a corrupt file so that a new one can be created in its place; the old one
// stays for inspection.
func moveAside(path string, now time.Time) (string, error) {
	aside := path + ".corrupt-" + now.UTC().Format("20060102T150405.000Z")
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	return aside, nil
}

// queueFilePath is where file_storage keeps the client's file.
func queueFilePath(dir string, kind component.Kind, id component.ID, name string) string {
	return filepath.Join(dir, storageFileName(kind, id, name))
}
