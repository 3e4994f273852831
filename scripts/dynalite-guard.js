// Preloaded into dynalite by scripts/dynalite.sh. dynalite 4.0.0 rethrows
// the error of a request whose client went away mid-body ("aborted",
// ECONNRESET), which kills the whole server; clients that cancel a request
// (as the tests do on purpose) must not take the server down.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error('dynalite-guard: ignored a request aborted by its client:', err.message)
    return
  }
  console.error(err)
  process.exit(1)
})
