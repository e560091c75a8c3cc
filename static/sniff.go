package static

// sniffLen is how much net/http's response.ReadFrom copies itself (for
// Content-Type sniffing) before handing the rest to the connection.
const sniffLen = 512
