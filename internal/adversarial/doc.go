// Package adversarial holds no code, only the adversarial test suite of the
// module: hostile requests against the real session manager, on the real
// file store in a temporary directory, behind the real CSRF middleware.
//
// Every case asserts the status code the status policy prescribes and that
// nothing on disk changed that should not have: the tests snapshot the
// whole tree around the session directory (names, modes, sizes, SHA-256 of
// contents, modification and access times, the latter being the file
// store's expiry hints) before and after, reading files with O_NOATIME so
// that looking changes nothing. Run it with
//
//	go test -v ./internal/adversarial
//
// and the case names read as the list of attacks covered. The groups:
//
//   - cookies_test.go: cookie header garbage, signatures, key rotation;
//   - ids_test.go: hostile session IDs (signed, so they pass the MAC and
//     must be stopped by validation) and unknown IDs in bulk;
//   - lifecycle_test.go: fixation, privilege change, logout replay, idle
//     and absolute expiry under continuous activity, cookie attributes;
//   - csrf_test.go: the CSRF token and origin checks;
//   - status_test.go: store failures, oversized sessions, corrupt and
//     planted files, and what the logs may contain;
//   - encryption_test.go: encryption at rest: files of a key the server
//     does not have, planted plaintext, swapped, copied and tampered
//     files, key rotation, hashed file names, and the logs.
//
// harness_test.go has the application under test and the helpers.
package adversarial
