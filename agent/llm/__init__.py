"""The LLM stage: provisioning the embedded model, its vLLM server, the client, reranking, explaining."""
