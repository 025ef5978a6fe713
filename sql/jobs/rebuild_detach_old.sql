-- The old warehouse, attached while its records were copied, let go.
DETACH old;
