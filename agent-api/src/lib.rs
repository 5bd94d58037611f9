//! Agent API: JSON-RPC/MCP context API for AI agents (issue 5).
