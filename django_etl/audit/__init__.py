"""The audit trail: who changed which organization, membership, connector, credential, pipeline or step, and how."""
