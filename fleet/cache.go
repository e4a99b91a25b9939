package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// maxCacheBytes bounds the cache file that an instance boots from.
const maxCacheBytes = 64 << 20

// cacheFile is the content of the cache file: the last snapshot read from
// the store.
type cacheFile struct {
	Epoch   string        `json:"epoch"`
	Version uint64        `json:"version"`
	Records []cacheRecord `json:"records"`
}

type cacheRecord struct {
	Key       string    `json:"key"`
	Version   uint64    `json:"version"`
	Value     []byte    `json:"value"`
	Published time.Time `json:"published,omitzero"`
}

// encodeCache encodes a snapshot as a cache file.
func encodeCache(s Snapshot) ([]byte, error) {
	c := cacheFile{Epoch: s.Epoch, Version: s.Version, Records: make([]cacheRecord, len(s.Records))}
	for i, r := range s.Records {
		c.Records[i] = cacheRecord(r)
	}
	return json.Marshal(c)
}

// parseCache decodes a cache file. It checks the structure only: each
// record is checked again when it is applied.
func parseCache(data []byte) (Snapshot, error) {
	if len(data) > maxCacheBytes {
		return Snapshot{}, fmt.Errorf("%w: cache file of %d bytes, more than %d", ErrMalformed, len(data), maxCacheBytes)
	}
	var c cacheFile
	if err := json.Unmarshal(data, &c); err != nil {
		return Snapshot{}, fmt.Errorf("%w: cache file: %v", ErrMalformed, err)
	}
	if c.Epoch == "" {
		return Snapshot{}, fmt.Errorf("%w: cache file without an epoch", ErrMalformed)
	}
	s := Snapshot{Head: Head{Epoch: c.Epoch, Version: c.Version}, Records: make([]Record, 0, len(c.Records))}
	seen := make(map[string]bool, len(c.Records))
	for _, r := range c.Records {
		if r.Version > c.Version || r.Version == 0 || seen[r.Key] {
			return Snapshot{}, fmt.Errorf("%w: cache file: record %q at version %d of %d", ErrMalformed, r.Key, r.Version, c.Version)
		}
		seen[r.Key] = true
		s.Records = append(s.Records, Record(r))
	}
	return s, nil
}

// saveCache writes snap to the cache file, atomically (a temporary file
// renamed over it), if there is one and snap is not empty.
func (s *Syncer) saveCache(snap Snapshot) {
	if s.cfg.cacheFile == "" || snap.Epoch == "" {
		return
	}
	data, err := encodeCache(snap)
	if err == nil {
		err = writeFileAtomic(s.cfg.cacheFile, data)
	}
	if err != nil {
		s.storeError(opCache, err)
	}
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// bootFromCache applies the cache file, when the store could not be read
// at start-up.
func (s *Syncer) bootFromCache() {
	f, err := os.Open(s.cfg.cacheFile)
	if err != nil {
		if !os.IsNotExist(err) {
			s.storeError(opCache, err)
		}
		return
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCacheBytes+1))
	_ = f.Close()
	if err != nil {
		s.storeError(opCache, err)
		return
	}
	snap, err := parseCache(data)
	if err != nil {
		s.storeError(opCache, err)
		return
	}
	s.apply(snap, SourceCache)
	s.log.Warn("fleet: store unreachable at start-up; booted from the cache file",
		"path", s.cfg.cacheFile, "epoch", snap.Epoch, "version", snap.Version)
	s.readyOnce.Do(func() { close(s.ready) })
	if s.cfg.onApply != nil {
		s.cfg.onApply(s.Status())
	}
}
