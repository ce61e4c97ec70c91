SET search_path TO x;
