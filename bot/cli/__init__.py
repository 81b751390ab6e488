"""The `crowddesk` command line: argument parsing (`main`), and what each verb does (`verbs`,
`kb_verbs`, `desk_verbs`); one module per command group. The top room: it may import any other.
"""
