package mysql

// OnTx makes s call fn with the server connection ID of each append
// transaction, right after BEGIN, so a test can KILL it mid-append.
func OnTx(s *Store, fn func(connID int64)) { s.onTx = fn }
