package adversarial

// Encryption at rest (issue 4, item 3) is not built yet; its adversarial
// cases belong in this file, as TestEncryptionAtRest, on an env whose
// setup.store turns encryption on. Like every other group, each case asserts
// the status code and, with env.snapshot and env.unchanged, that nothing on
// disk changed that should not have:
//
//   - a file written under a key that is no longer in the ring: no session
//     (env.noSession: 401 on /me, 200 anonymous on /peek), a warning in
//     env.logs, never a 500 or a crash;
//   - two sessions' files swapped (the ID is the associated data): no
//     session for either cookie;
//   - a plaintext file in an encrypted store: no session;
//   - during key rotation: a file under the old key still loads, and is
//     written under the new key by its next save;
//   - hashed file names: a cookie's ID finds only its own sess_<hash>.json,
//     and env.sessionFiles, env.hasFile and env.record learn the naming.
//
// TestLogsCarryNoSecrets should then also run with encryption on, adding
// the key ring's keys to the secrets it looks for.
