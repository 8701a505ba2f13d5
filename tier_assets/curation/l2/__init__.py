"""L2 selected tier: LLM annotation of seeds, distillation into a light classifier, scoring and selection.

Flow: ``seeds.sample_seeds`` picks a stratified sample of L1 documents (plus
``reference.reference_documents``); ``annotate.Annotator`` labels it with an LLM
(per-domain ``prompts``); ``distill.distill`` fits a versioned
``QualityClassifier`` over embeddings + text statistics; ``tier`` runs the
tier's stages, ``ScoreQuality`` (per document) then ``SelectBest`` (per partition); ``evaluate`` measures
a scorer against human labels. No Dagster imports here.
"""
