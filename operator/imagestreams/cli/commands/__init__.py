"""One module per verb: its usage, description, examples, flags (`add_arguments`) and `run(ctx)`.

`cli.app` imports only the module of the verb being run. A module checks its arguments with the pure
modules of `cli` first, then reads and writes through `ctx.kube`, whose `edit_stream` / `edit_workload`
own the read-modify-write; the verb's decision is a function from the object as read to an `Edit`.
"""
