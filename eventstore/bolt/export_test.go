package bolt

// WithFlushChunk lets the external tests spread an index flush over many
// commits.
var WithFlushChunk = withFlushChunk
