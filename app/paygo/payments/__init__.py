"""Mobile-money payments: provider callbacks in, the reconciler, suspense and statements."""
