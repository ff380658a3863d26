"""The satisfaction survey (SA-CS-005) and the complaint follow-ups it opens."""
