# moe_model.sh - sourced by moe_e2e.sh and moe_ep_e2e.sh: the MoE model
# both train (a LLaMA-style model with grouped queries; 8 experts, top-2,
# a shared expert, balancing and z-losses on layers 0 and 2 of 4; dropout
# on; 20 steps of 8 samples), and column, which reads one metric of every
# training line of a --metrics-file.
model=(--num-layers 4 --hidden-size 64 --num-attention-heads 4 --group-query-attention
       --num-query-groups 2 --normalization RMSNorm --position-embedding-type rope --swiglu
       --ffn-hidden-size 96 --disable-bias-linear --untie-embeddings-and-output-weights
       --seq-length 32 --micro-batch-size 2 --global-batch-size 8 --lr 3e-3 --lr-warmup-iters 3
       --data-path synthetic:addition:2 --log-interval 1 --log-level warn --seed 13
       --hidden-dropout 0.1 --attention-dropout 0.1 --train-iters 20
       --num-experts 8 --moe-router-topk 2 --moe-ffn-hidden-size 48
       --moe-shared-expert-intermediate-size 32 --moe-layer-freq '[1,0,1,0]'
       --moe-aux-loss-coeff 0.05 --moe-z-loss-coeff 0.005)


# column NAME FILE: metric NAME of every training line
column() { grep '"type": "train"' "$2" | sed "s/.*\"$1\": \([^,]*\),.*/\1/"; }
