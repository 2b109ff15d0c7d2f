"""Entry points the tenant CronJobs run (`memory-jobs retention|report`), with the tenant's credentials Secret
as their environment and no Kubernetes API access: results are recorded on the store, where the operator reads
them into the tenant's status."""
