// Command biofedinterop checks BioFed checkpoints and logs with Go's reference
// packages golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog.
//
//	biofedinterop note <checkpoint file> <verifier key>...
//	    note.Open with the given verifier keys; prints {"text", "sigs", "unverified"}
//	    or exits 1 with the error on stderr.
//	biofedinterop tlog <input.json>
//	    input: {"leaves": [base64 leaf bytes], "size": n, "root": base64,
//	            "inclusion": [{"index", "size", "proof": [base64]}],
//	            "consistency": [{"first", "second", "proof": [base64]}]}
//	    prints the leaf hashes, the tree hash at every size, and per proof whether
//	    tlog accepts it and the proof tlog itself computes.
//
// The test suite builds it in GOPATH mode (no module proxy) from Debian's
// golang-golang-x-mod-dev sources.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

type signature struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

func signatures(sigs []note.Signature) []signature {
	out := []signature{}
	for _, s := range sigs {
		out = append(out, signature{s.Name, fmt.Sprintf("%08x", s.Hash)})
	}
	return out
}

func openNote(path string, vkeys []string) {
	msg, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	var verifiers []note.Verifier
	for _, vkey := range vkeys {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			fail("verifier key %q: %v", vkey, err)
		}
		verifiers = append(verifiers, v)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		fail("%v", err)
	}
	emit(map[string]interface{}{"text": n.Text, "sigs": signatures(n.Sigs), "unverified": signatures(n.UnverifiedSigs)})
}

type proofCase struct {
	Index  int64       `json:"index"`
	Size   int64       `json:"size"`
	First  int64       `json:"first"`
	Second int64       `json:"second"`
	Proof  []tlog.Hash `json:"proof"`
}

type tlogInput struct {
	Leaves      [][]byte    `json:"leaves"`
	Size        int64       `json:"size"`
	Root        tlog.Hash   `json:"root"`
	Inclusion   []proofCase `json:"inclusion"`
	Consistency []proofCase `json:"consistency"`
}

type proofResult struct {
	Error string      `json:"error"` // "" when tlog accepts the node's proof
	Proof []tlog.Hash `json:"proof"` // the proof tlog computes for the same question
}

func checkLog(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	var in tlogInput
	if err := json.Unmarshal(data, &in); err != nil {
		fail("input: %v", err)
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, index := range indexes {
			out[i] = stored[index]
		}
		return out, nil
	})
	var leafHashes []tlog.Hash
	var treeHashes []tlog.Hash // tree hash at size 1..n
	for i, leaf := range in.Leaves {
		leafHashes = append(leafHashes, tlog.RecordHash(leaf))
		hashes, err := tlog.StoredHashes(int64(i), leaf, reader)
		if err != nil {
			fail("stored hashes of record %d: %v", i, err)
		}
		stored = append(stored, hashes...)
		th, err := tlog.TreeHash(int64(i+1), reader)
		if err != nil {
			fail("tree hash at %d: %v", i+1, err)
		}
		treeHashes = append(treeHashes, th)
	}
	errText := func(err error) string {
		if err != nil {
			return err.Error()
		}
		return ""
	}
	var inclusion, consistency []proofResult
	for _, c := range in.Inclusion {
		mine, err := tlog.ProveRecord(c.Size, c.Index, reader)
		if err != nil {
			fail("ProveRecord(%d, %d): %v", c.Size, c.Index, err)
		}
		check := tlog.CheckRecord(c.Proof, c.Size, treeHashes[c.Size-1], c.Index, leafHashes[c.Index])
		inclusion = append(inclusion, proofResult{errText(check), mine})
	}
	for _, c := range in.Consistency {
		mine, err := tlog.ProveTree(c.Second, c.First, reader)
		if err != nil {
			fail("ProveTree(%d, %d): %v", c.Second, c.First, err)
		}
		check := tlog.CheckTree(c.Proof, c.Second, treeHashes[c.Second-1], c.First, treeHashes[c.First-1])
		consistency = append(consistency, proofResult{errText(check), mine})
	}
	rootMatches := in.Size >= 1 && in.Size <= int64(len(treeHashes)) && treeHashes[in.Size-1] == in.Root
	emit(map[string]interface{}{"leafHashes": leafHashes, "treeHashes": treeHashes, "rootMatches": rootMatches,
		"inclusion": inclusion, "consistency": consistency})
}

func emit(v interface{}) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fail("%v", err)
	}
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: biofedinterop note <checkpoint file> <verifier key>... | biofedinterop tlog <input.json>")
	}
	switch os.Args[1] {
	case "note":
		openNote(os.Args[2], os.Args[3:])
	case "tlog":
		checkLog(os.Args[2])
	default:
		fail("unknown command %q", os.Args[1])
	}
}
