"""Metrics of faithfulness: FID/IS (torch-fidelity), rank/MRR, neighbours, distances, factor probes."""
from rcdm_lib.metrics.distances import (pairwise_distances, pairwise_squared_distances, per_sample_variance,
                                        random_pair_squared_distances, squared_distances_to)
from rcdm_lib.metrics.factor_probe import (FactorProbe, agreement_table, chance_agreement, factor_agreement,
                                           pixel_features)
from rcdm_lib.metrics.fidelity import (INCEPTION, fidelity_metrics, frechet_distance, inception_score,
                                       register_encoder_extractor)
from rcdm_lib.metrics.neighbours import knn, knn_label_agreement
from rcdm_lib.metrics.rank import (chance_mrr, encoder_view, mean_reciprocal_rank, rank_summary, sample_ranks,
                                   target_ranks)

__all__ = [
    "pairwise_distances", "pairwise_squared_distances", "per_sample_variance", "random_pair_squared_distances",
    "squared_distances_to", "FactorProbe", "agreement_table", "chance_agreement", "factor_agreement",
    "pixel_features", "INCEPTION", "fidelity_metrics", "frechet_distance", "inception_score",
    "register_encoder_extractor", "knn", "knn_label_agreement", "chance_mrr", "encoder_view",
    "mean_reciprocal_rank", "rank_summary", "sample_ranks", "target_ranks",
]
