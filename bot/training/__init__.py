"""`crowddesk train`: fitting the classifier, the retriever calibration and the thresholds on
held-out traffic, and the versioned model artifact they are saved in.

May import `bot/project/`, `bot/dialogue/` and the layers below `bot/`.
"""
